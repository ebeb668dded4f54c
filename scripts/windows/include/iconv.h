/* iconv for ReadStat on Windows (mingw has none): the declarations ReadStat's sources need.
 * The writers the eCRF uses (Stata .dta 118, SPSS .sav, SAS .xpt) pass no encodings, so they
 * never open a converter; see iconv_shim.c. */
#ifndef ECRF_ICONV_SHIM_H
#define ECRF_ICONV_SHIM_H
#include <stddef.h>

typedef void *iconv_t;

iconv_t iconv_open(const char *tocode, const char *fromcode);
size_t iconv(iconv_t cd, char **inbuf, size_t *inbytesleft, char **outbuf,
             size_t *outbytesleft);
int iconv_close(iconv_t cd);

#endif
