/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memmgr's state words, the kernel's side of the protocol that
 * uapi/linux/memmgr.h writes down: the claim of a victim, here so that the
 * choice of victims (memmgr_evict.c) and its KUnit tests have it inline.
 * memmgr_state.c has the rest: the area, its pages, the pin ioctls.
 */
#ifndef _MEMMGR_STATE_H
#define _MEMMGR_STATE_H

#include "memmgr.h"

/* A word of no buffer: a page of words starts so. */
#define MEMMGR_STATE_EMPTY	(MEMMGR_STATE_FREED | MEMMGR_STATE_GONE)
#define MEMMGR_STATE_NOT_LIVE	(MEMMGR_STATE_EVICTING | MEMMGR_STATE_GONE | \
				 MEMMGR_STATE_FREED)
/* The low bits a live buffer's word may have; any other makes it garbage. */
#define MEMMGR_STATE_LIVE_BITS	(MEMMGR_STATE_PINS | MEMMGR_STATE_USED | \
				 MEMMGR_STATE_PARKED)

/* Compare-and-swap attempts against a client changing its word meanwhile */
#define MEMMGR_STATE_TRIES	64

static inline u64 memmgr_state_gen(const struct memmgr_buffer *buf)
{
	return (u64)buf->seq << MEMMGR_STATE_GEN_SHIFT;
}

/* Is @w no live word of @buf: another generation, or a bit out of place? */
static inline bool memmgr_state_foreign(const struct memmgr_buffer *buf, u64 w)
{
	return (w & ~(u64)U32_MAX) != memmgr_state_gen(buf) ||
	       (w & ~MEMMGR_STATE_LIVE_BITS & U32_MAX);
}

/**
 * memmgr_state_claim() - may the kernel evict this buffer?  Claim it if so
 * @buf:	a buffer of the evictable set
 * @second_chance: evict_policy=lru: a buffer used since the last look
 *		gets a second chance instead
 *
 * The claim (EVICTING in the word) is made final with
 * memmgr_state_set_locked() or undone with memmgr_state_unclaim(), under
 * the same hold of memmgr_dev.lock.
 *
 * Context: memmgr_dev.lock held.
 * Return: MEMMGR_CLAIMED (a buffer without a word is always claimed);
 * MEMMGR_CLAIM_USED (USED was set: cleared now); MEMMGR_CLAIM_PINNED
 * (pinned, PARKED set now, or a word it does not expect: the caller takes
 * it out of the set); MEMMGR_CLAIM_BUSY (the client kept changing it).
 */
static inline enum memmgr_claim
memmgr_state_claim(struct memmgr_buffer *buf, bool second_chance)
{
	u64 gen = memmgr_state_gen(buf), w;
	int i;

	if (!buf->word)
		return MEMMGR_CLAIMED;
	for (i = 0; i < MEMMGR_STATE_TRIES; i++) {
		w = READ_ONCE(*buf->word);
		if ((w & ~MEMMGR_STATE_USED) == gen) {
			if (second_chance && (w & MEMMGR_STATE_USED)) {
				if (cmpxchg64(buf->word, w, gen) == w)
					return MEMMGR_CLAIM_USED;
				continue;
			}
			if (cmpxchg64(buf->word, w,
				      gen | MEMMGR_STATE_EVICTING) == w) {
				buf->claimed = w;
				return MEMMGR_CLAIMED;
			}
			continue;
		}
		/* Not ours to read further: as good as pinned, for good. */
		if (memmgr_state_foreign(buf, w) || (w & MEMMGR_STATE_PARKED))
			return MEMMGR_CLAIM_PINNED;
		if (cmpxchg64(buf->word, w, w | MEMMGR_STATE_PARKED) == w)
			return MEMMGR_CLAIM_PINNED;
	}
	return MEMMGR_CLAIM_BUSY;
}

/**
 * memmgr_state_unclaim() - undo memmgr_state_claim()'s MEMMGR_CLAIMED
 * @buf:	the buffer, claimed under this hold of memmgr_dev.lock
 */
static inline void memmgr_state_unclaim(struct memmgr_buffer *buf)
{
	u64 gen = memmgr_state_gen(buf);

	if (buf->word)
		cmpxchg64(buf->word, gen | MEMMGR_STATE_EVICTING, buf->claimed);
}

#endif /* _MEMMGR_STATE_H */
