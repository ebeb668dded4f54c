/* The iconv that ReadStat links on Windows (built by crates/export/build.rs with ReadStat's
 * sources). ReadStat opens a converter only when it reads a file or writes one in another
 * encoding than UTF-8; the eCRF writes UTF-8 (.dta 118, .sav) or ASCII (.xpt) and never reads.
 * So no conversion is offered: iconv_open fails with EINVAL, which ReadStat reports as
 * READSTAT_ERROR_UNSUPPORTED_CHARSET instead of converting wrongly. */
#include <errno.h>
#include "iconv.h"

iconv_t iconv_open(const char *tocode, const char *fromcode) {
    (void)tocode;
    (void)fromcode;
    errno = EINVAL;
    return (iconv_t)-1;
}

size_t iconv(iconv_t cd, char **inbuf, size_t *inbytesleft, char **outbuf,
             size_t *outbytesleft) {
    (void)cd;
    (void)inbuf;
    (void)inbytesleft;
    (void)outbuf;
    (void)outbytesleft;
    errno = EBADF;
    return (size_t)-1;
}

int iconv_close(iconv_t cd) {
    (void)cd;
    return 0;
}
