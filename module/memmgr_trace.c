// SPDX-License-Identifier: GPL-2.0
/* memmgr's tracepoints are defined here, once; see memmgr_trace.h. */
#define CREATE_TRACE_POINTS
#include "memmgr_trace.h"
