/*
 * crc32_internal.h - the paths behind chash_crc32, named so that tests and the
 * benchmark can check and time each one on its own. Not installed; hidden.
 *
 * Invariant: every function here returns exactly what chash_crc32 (and zlib
 * crc32()) returns for the same arguments.
 */
#ifndef CHASH_CRC32_INTERNAL_H
#define CHASH_CRC32_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* The table path alone (slicing-by-8), whatever the CPU offers. */
uint32_t chash_crc32_portable(uint32_t crc, const void *buf, size_t len);

/* The x86-64 128-bit PCLMULQDQ folding alone (tables below 32 bytes and for
 * the last 0..15), which chash_crc32 leaves for VPCLMULQDQ on long inputs
 * when the CPU has it. Call only when chash_crc32_pclmul_supported() returns
 * nonzero; it returns 0 on every other architecture. */
int chash_crc32_pclmul_supported(void);
uint32_t chash_crc32_pclmul(uint32_t crc, const void *buf, size_t len);

/* The fastest instructions chash_crc32 uses on this CPU: "vpclmulqdq",
 * "pclmul", "armv8-crc", or NULL when it has only the tables. Cheap: reads
 * flags the C runtime cached. */
const char *chash_crc32_accel_name(void);

#endif
