/* SPDX-License-Identifier: GPL-2.0 */
/* What kernel code takes for granted, for the host unit tests. */
#include <stdbool.h>
#include <stdint.h>

typedef uint64_t u64;
typedef uint32_t u32;
