/* bcryptprimitives.dll for running ecrf.exe under Wine 8 (tests only, built by
 * scripts/test-windows.sh beside the exe, never shipped): Rust's std imports ProcessPrng from
 * it, which Wine 8 lacks; RtlGenRandom (advapi32's SystemFunction036) gives the same bytes. */
#include <windows.h>
#include <ntsecapi.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    return RtlGenRandom(data, (ULONG)len);
}
