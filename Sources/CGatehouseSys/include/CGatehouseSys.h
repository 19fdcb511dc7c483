// What Swift's Glibc module leaves out: epoll, eventfd, and the GNU extensions (accept4, pthread_setname_np,
// IOV_MAX). This header is seen by Swift and must NOT define _GNU_SOURCE: the types it would then pull in
// (fd_set, …) differ from Glibc's and clang refuses to merge the modules. The GNU calls live in shim.c instead.
#ifndef CGATEHOUSESYS_H
#define CGATEHOUSESYS_H
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

// Constants as plain ints: Swift imports some of these as enums of the wrong type, or not at all.
int ghsys_so_reuseport(void);
int ghsys_msg_nosignal(void);
int ghsys_tcp_nodelay(void);
int ghsys_sock_nonblock_cloexec(void);
int ghsys_iov_max(void);

// accept4(SOCK_NONBLOCK | SOCK_CLOEXEC).
int ghsys_accept4(int fd, struct sockaddr *address, socklen_t *length);
// sendmsg(MSG_NOSIGNAL) over an iovec array: writev itself cannot suppress SIGPIPE.
ssize_t ghsys_sendv(int fd, struct iovec *iov, int count);
int ghsys_set_thread_name(const char *name);
int ghsys_get_thread_name(char *name, size_t size);

static inline int ghsys_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
static inline int ghsys_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

static inline unsigned long long ghsys_monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}
#endif
