// PCRE2 with 16-bit code units, used without PCRE2_UTF: subjects and patterns are UTF-16 code units, as a
// JavaScript regular expression without the `u` flag sees them. The width must be set before pcre2.h.
#define PCRE2_CODE_UNIT_WIDTH 16
#include <pcre2.h>
