/*
 * default.c - the built-in policy: policies/default.yaml, embedded.
 *
 * The file is pulled in with the assembler's .incbin (path relative to the
 * repository root, where make runs), so the shipped file and the compiled
 * default can never drift apart; the Makefile makes default.o depend on it.
 */
#include "policies/pol_int.h"

__asm__(".section .rodata\n"
        ".globl pol_default_start, pol_default_len\n"
        ".hidden pol_default_start, pol_default_len\n"
        ".balign 16\n"
        "pol_default_start:\n"
        ".incbin \"policies/default.yaml\"\n"
        "pol_default_end:\n"
        ".byte 0\n"
        ".balign 8\n"
        "pol_default_len:\n"
        ".quad pol_default_end - pol_default_start\n"
        ".previous\n");

extern const char pol_default_start[];
extern const unsigned long long pol_default_len;

const char *pol_default_text(size_t *len)
{
    if (len)
        *len = (size_t)pol_default_len;
    return pol_default_start;
}
