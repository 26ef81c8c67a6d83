/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memmgr's tracepoints, in /sys/kernel/tracing/events/memmgr/: one event
 * per decision a request meets.  @result is 0 or the negative errno.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM memmgr

#if !defined(_MEMMGR_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _MEMMGR_TRACE_H

#include <linux/tracepoint.h>

DECLARE_EVENT_CLASS(memmgr_request,
		    TP_PROTO(u32 pool, u64 tag, u64 bytes, int result),
		    TP_ARGS(pool, tag, bytes, result),
		    TP_STRUCT__entry(__field(u32, pool)
				     __field(int, result)
				     __field(u64, tag)
				     __field(u64, bytes)),
		    TP_fast_assign(__entry->pool = pool;
				   __entry->result = result;
				   __entry->tag = tag;
				   __entry->bytes = bytes;),
		    TP_printk("pool=%s tag=%llu bytes=%llu result=%d",
			      __entry->pool ? "exec" : "storage",
			      __entry->tag, __entry->bytes, __entry->result)
);

/* A request granted at once or after a hold. */
DEFINE_EVENT(memmgr_request, memmgr_alloc,
	     TP_PROTO(u32 pool, u64 tag, u64 bytes, int result),
	     TP_ARGS(pool, tag, bytes, result));

/* A buffer freed by its owner (FREE, RELEASE, close). */
DEFINE_EVENT(memmgr_request, memmgr_free,
	     TP_PROTO(u32 pool, u64 tag, u64 bytes, int result),
	     TP_ARGS(pool, tag, bytes, result));

/* A request that does not fit starts to wait. */
DEFINE_EVENT(memmgr_request, memmgr_hold,
	     TP_PROTO(u32 pool, u64 tag, u64 bytes, int result),
	     TP_ARGS(pool, tag, bytes, result));

/* A held request granted by someone else's free. */
DEFINE_EVENT(memmgr_request, memmgr_wake,
	     TP_PROTO(u32 pool, u64 tag, u64 bytes, int result),
	     TP_ARGS(pool, tag, bytes, result));

/* A request refused: E2BIG, EAGAIN, ETIMEDOUT or EINTR. */
DEFINE_EVENT(memmgr_request, memmgr_decline,
	     TP_PROTO(u32 pool, u64 tag, u64 bytes, int result),
	     TP_ARGS(pool, tag, bytes, result));

/* A storage buffer evicted to make room. */
DEFINE_EVENT(memmgr_request, memmgr_evict,
	     TP_PROTO(u32 pool, u64 tag, u64 bytes, int result),
	     TP_ARGS(pool, tag, bytes, result));

#endif /* _MEMMGR_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE memmgr_trace
#include <trace/define_trace.h>
