// The GNU extensions, compiled apart so _GNU_SOURCE never reaches the header Swift imports.
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include "CGatehouseSys.h"

int ghsys_so_reuseport(void) { return SO_REUSEPORT; }
int ghsys_msg_nosignal(void) { return MSG_NOSIGNAL; }
int ghsys_tcp_nodelay(void) { return TCP_NODELAY; }
int ghsys_sock_nonblock_cloexec(void) { return SOCK_NONBLOCK | SOCK_CLOEXEC; }
int ghsys_iov_max(void) { return IOV_MAX; }

int ghsys_accept4(int fd, struct sockaddr *address, socklen_t *length) {
    return accept4(fd, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

ssize_t ghsys_sendv(int fd, struct iovec *iov, int count) {
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = iov;
    message.msg_iovlen = (size_t)count;
    return sendmsg(fd, &message, MSG_NOSIGNAL);
}

int ghsys_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

int ghsys_get_thread_name(char *name, size_t size) { return pthread_getname_np(pthread_self(), name, size); }
