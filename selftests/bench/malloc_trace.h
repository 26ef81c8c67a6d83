/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The allocation trace of memmgr_bench's case 14, as malloc_trace writes
 * it: a header, then one 8-byte event per call, in the order they were
 * made, all little-endian (the host's and the guest's order).
 *
 * An object's id is a small integer given at its allocation and free again
 * once it is freed (the most recently freed id is the next one given), so
 * the ids of a trace go from 0 to mtr_header.nr_ids - 1, the most objects
 * live at once: a replayer keeps its pointers in an array.  A
 * realloc keeps its object's id, wherever the object moved.
 */
#ifndef MALLOC_TRACE_H
#define MALLOC_TRACE_H

#include <stdint.h>

#define MTR_MAGIC	"MMTRACE1"

enum mtr_op {
	MTR_MALLOC,	/* id: a new object of size bytes */
	MTR_FREE,	/* id: freed; size is 0 */
	MTR_REALLOC,	/* id: grown or shrunk to size bytes (never 0) */
};

#define MTR_OP_SHIFT	30
#define MTR_ID_MASK	((1U << MTR_OP_SHIFT) - 1)

/**
 * struct mtr_header - the start of a trace file
 * @magic:	MTR_MAGIC, without its NUL
 * @nr_events:	events that follow
 * @nr_ids:	ids used, the most objects live at once
 * @flags:	0
 */
struct mtr_header {
	char magic[8];
	uint64_t nr_events;
	uint32_t nr_ids;
	uint32_t flags;
};

/**
 * struct mtr_event - one call
 * @op_id:	enum mtr_op << MTR_OP_SHIFT | the object's id
 * @size:	bytes asked for (MTR_MALLOC, MTR_REALLOC), 0 for MTR_FREE
 */
struct mtr_event {
	uint32_t op_id;
	uint32_t size;
};

static inline enum mtr_op mtr_op(const struct mtr_event *e)
{
	return (enum mtr_op)(e->op_id >> MTR_OP_SHIFT);
}

static inline uint32_t mtr_id(const struct mtr_event *e)
{
	return e->op_id & MTR_ID_MASK;
}

#endif /* MALLOC_TRACE_H */
