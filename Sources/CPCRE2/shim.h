// PCRE2 with 8-bit code units (UTF-8 subjects and patterns); the width must be set before pcre2.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
