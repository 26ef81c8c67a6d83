// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's evictable set: the live storage buffers with no pin, and the
 * choice of eviction victims among them.
 *
 * Buffers are kept in buckets by size: bucket k holds the buffers of 2^k
 * to 2^(k+1) - 1 pages, each bucket as an array (for a victim at random)
 * and as a list in least recently used order (for evict_policy=lru; each
 * buffer carries the tick of its last use, so the oldest buffer overall is
 * the oldest of the buckets' heads).  A victim that must fit in a given
 * room (execution evicting storage above S in mode=unified, which must not
 * take storage below S) is chosen among the buckets whose every buffer
 * fits, and among at most MEMMGR_EVICT_PROBES buffers of the one bucket
 * that straddles the room.  So choosing a victim costs O(buckets) whatever
 * the number of buffers.
 *
 * A choice of several victims that does not reach what is needed is put
 * back as it was, array slots and LRU order included, and nothing is
 * evicted.  A buffer whose client pins it in its state word
 * (memmgr_state.c) is in the set until a search finds it pinned; it then
 * leaves the set, parked.
 *
 * Everything here runs under memmgr_dev.lock.
 */
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/slab.h>

#include "memmgr.h"
#include "memmgr_state.h"

/* Buffers examined in the bucket that straddles the room, per victim. */
#define MEMMGR_EVICT_PROBES	16

static unsigned int bucket_of(u64 pages)
{
	return ilog2(pages);
}

static unsigned long random_below(unsigned long n)
{
	if (n > U32_MAX)
		return get_random_u64() % n;
	return get_random_u32_below(n);
}

/**
 * memmgr_evictable_init() - room for every buffer a reserve can hold
 * @e:		the set, zeroed
 * @pages:	the reserve's size: bucket k has room for @pages >> k
 *
 * Return: 0 or -ENOMEM.
 */
int memmgr_evictable_init(struct memmgr_evictable *e, u64 pages)
{
	unsigned int k;

	e->failed.gen = ~0ULL;		/* no search failed yet */
	e->nr_buckets = bucket_of(pages) + 1;
	for (k = 0; k < MEMMGR_NR_BUCKETS; k++) {
		INIT_LIST_HEAD(&e->lru[k]);
		if (k >= e->nr_buckets)
			continue;
		e->bufs[k] = kvcalloc(pages >> k, sizeof(*e->bufs[k]),
				      GFP_KERNEL);
		if (!e->bufs[k]) {
			memmgr_evictable_exit(e);
			return -ENOMEM;
		}
	}
	return 0;
}

void memmgr_evictable_exit(struct memmgr_evictable *e)
{
	unsigned int k;

	for (k = 0; k < e->nr_buckets; k++) {
		kvfree(e->bufs[k]);
		e->bufs[k] = NULL;
	}
}

/* Put @buf at the end of its bucket's array, and in its list after @after. */
static void set_link(struct memmgr_evictable *e, struct memmgr_buffer *buf,
		     struct list_head *after)
{
	unsigned int k = bucket_of(buf->nr_pages);

	buf->evict_idx = e->nr[k];
	e->bufs[k][e->nr[k]++] = buf;
	list_add(&buf->lru_node, after);
	e->mask |= BIT_ULL(k);
	e->count++;
}

/*
 * Take @buf out of its bucket, leaving in it what set_relink() needs to
 * put it back exactly: its array index (@evict_idx, unchanged) and the
 * list entry before it (@lru_node.prev).
 */
static void set_unlink(struct memmgr_evictable *e, struct memmgr_buffer *buf)
{
	unsigned int k = bucket_of(buf->nr_pages);
	struct list_head *prev = buf->lru_node.prev;
	struct memmgr_buffer *last = e->bufs[k][--e->nr[k]];

	/* If @buf was the last, this leaves its index and slot as they were. */
	e->bufs[k][buf->evict_idx] = last;
	last->evict_idx = buf->evict_idx;
	list_del(&buf->lru_node);
	buf->lru_node.prev = prev;
	if (!e->nr[k])
		e->mask &= ~BIT_ULL(k);
	e->count--;
}

/*
 * Undo set_unlink(); the buffers unlinked after @buf are back already, so
 * its slot holds the buffer that moved there and its list neighbour is in
 * place.
 */
static void set_relink(struct memmgr_evictable *e, struct memmgr_buffer *buf)
{
	unsigned int k = bucket_of(buf->nr_pages);
	long idx = buf->evict_idx;
	struct memmgr_buffer *moved = e->bufs[k][idx];

	moved->evict_idx = e->nr[k];
	e->bufs[k][e->nr[k]++] = moved;
	e->bufs[k][idx] = buf;
	buf->evict_idx = idx;
	list_add(&buf->lru_node, buf->lru_node.prev);
	e->mask |= BIT_ULL(k);
	e->count++;
}

/**
 * memmgr_evictable_add() - a storage buffer lost its last pin
 * @e:		the set
 * @buf:	the buffer, not in the set; it is the most recently used
 */
void memmgr_evictable_add(struct memmgr_evictable *e,
			  struct memmgr_buffer *buf)
{
	e->gen++;
	buf->stamp = ++e->clock;
	set_link(e, buf, e->lru[bucket_of(buf->nr_pages)].prev);
}

/**
 * memmgr_evictable_del() - a buffer leaves the set (pinned, freed, evicted)
 * @e:		the set
 * @buf:	the buffer, in the set
 */
void memmgr_evictable_del(struct memmgr_evictable *e,
			  struct memmgr_buffer *buf)
{
	e->gen++;
	set_unlink(e, buf);
	INIT_LIST_HEAD(&buf->lru_node);
	buf->evict_idx = -1;
}

/**
 * memmgr_evictable_touch() - a buffer in the set was used: last in LRU order
 * @e:		the set
 * @buf:	the buffer, in the set
 */
void memmgr_evictable_touch(struct memmgr_evictable *e,
			    struct memmgr_buffer *buf)
{
	e->gen++;
	buf->stamp = ++e->clock;
	list_move_tail(&buf->lru_node, &e->lru[bucket_of(buf->nr_pages)]);
}

/* The buckets whose every buffer has at most @room pages. */
static u64 fitting_buckets(u64 room)
{
	unsigned int k;

	if (room == U64_MAX)
		return ~0ULL;
	k = ilog2(room + 1);	/* buckets below k: 2^(k'+1) - 1 <= room */
	return k ? GENMASK_ULL(k - 1, 0) : 0;
}

/* The bucket that holds buffers of at most @room pages and larger, or -1. */
static int straddling_bucket(struct memmgr_evictable *e, u64 room)
{
	unsigned int k;

	if (!room || room == U64_MAX)
		return -1;
	k = bucket_of(room);
	if (fitting_buckets(room) & BIT_ULL(k) || !(e->mask & BIT_ULL(k)))
		return -1;
	return k;
}

/* The @n-th buffer of the buckets in @mask, in bucket order. */
static struct memmgr_buffer *nth_buffer(struct memmgr_evictable *e, u64 mask,
					unsigned long n)
{
	unsigned int k;

	for (; mask; mask &= mask - 1) {
		k = __ffs64(mask);
		if (n < e->nr[k]) {
			e->examined++;
			return e->bufs[k][n];
		}
		n -= e->nr[k];
	}
	return NULL;
}

static struct memmgr_buffer *pick_random(struct memmgr_evictable *e, u64 room)
{
	u64 mask = e->mask & fitting_buckets(room), m;
	int kp = straddling_bucket(e, room);
	unsigned long n = 0, n_kp = kp < 0 ? 0 : e->nr[kp];
	struct memmgr_buffer *buf;
	unsigned int i;

	for (m = mask; m; m &= m - 1)
		n += e->nr[__ffs64(m)];
	if (!n && !n_kp)
		return NULL;
	/* The straddling bucket's share of picks: probe it at random. */
	if (random_below(n + n_kp) >= n) {
		for (i = 0; i < MEMMGR_EVICT_PROBES; i++) {
			buf = e->bufs[kp][random_below(n_kp)];
			e->examined++;
			if (buf->nr_pages <= room)
				return buf;
		}
		if (!n)
			return NULL;
	}
	return nth_buffer(e, mask, random_below(n));
}

static struct memmgr_buffer *pick_lru(struct memmgr_evictable *e, u64 room)
{
	u64 mask = e->mask & fitting_buckets(room);
	int kp = straddling_bucket(e, room);
	struct memmgr_buffer *best = NULL, *buf;
	unsigned int i = 0;

	for (; mask; mask &= mask - 1) {
		buf = list_first_entry(&e->lru[__ffs64(mask)],
				       struct memmgr_buffer, lru_node);
		e->examined++;
		if (!best || buf->stamp < best->stamp)
			best = buf;
	}
	if (kp < 0)
		return best;
	list_for_each_entry(buf, &e->lru[kp], lru_node) {
		if (++i > MEMMGR_EVICT_PROBES)
			break;
		e->examined++;
		if (buf->nr_pages > room)
			continue;
		if (!best || buf->stamp < best->stamp)
			best = buf;
		break;		/* the oldest that fits in this bucket */
	}
	return best;
}

/**
 * memmgr_evict_victim() - the next victim, of any size
 * @e:		the set, not empty
 * @lru:	evict_policy=lru: the least recently used; else one at random
 *
 * Return: the buffer, still in the set.
 */
struct memmgr_buffer *memmgr_evict_victim(struct memmgr_evictable *e,
					  bool lru)
{
	return lru ? pick_lru(e, U64_MAX) : pick_random(e, U64_MAX);
}

/* Give up second chances after this many per choice: the search stays short. */
#define MEMMGR_EVICT_CHANCES	64

/**
 * memmgr_evict_select() - victims that fit in a room, for a floor
 * @e:		the set
 * @lru:	evict_policy=lru
 * @need:	pages to find
 * @room:	pages the victims may add up to at most (U64_MAX: no floor)
 * @picked:	out: the victims, chained through evict_node, taken out of
 *		the set (@evict_idx -1), claimed (memmgr_state_claim())
 * @parked:	out: buffers found pinned in their state words, chained
 *		through evict_node and taken out of the set, whether or not
 *		victims were found: the caller parks them
 *
 * Each victim is the least recently used (or one at random) of those that
 * fit in what is left of @room, as far as the bounded search sees them,
 * and whose state word, if it has one, lets the kernel claim it; with
 * evict_policy=lru, one whose word says it was used since is moved to
 * the most recently used end instead, up to MEMMGR_EVICT_CHANCES times.
 * Each choice costs O(buckets), so a search costs O(victims) plus the
 * buffers it found pinned, each of which leaves the set: what it evicts
 * when it succeeds; when it fails, it may have looked at up to @need pages'
 * worth of buffers, and the failure is remembered, so that the same search
 * is not made again until the set changes (a held request is tried at
 * every wake-up).
 *
 * Return: true when @need pages were found; false, with the set as it
 * was but for @parked, @picked empty and every claim undone, when they
 * were not.
 */
bool memmgr_evict_select(struct memmgr_evictable *e, bool lru, u64 need,
			 u64 room, struct list_head *picked,
			 struct list_head *parked)
{
	struct memmgr_buffer *buf, *next;
	unsigned int chances = 0;
	bool found;
	LIST_HEAD(tried);
	u64 taken = 0;

	if (e->failed.gen == e->gen && e->failed.need == need &&
	    e->failed.room == room && e->failed.lru == lru)
		return false;
	while (taken < need && taken < room) {
		buf = lru ? pick_lru(e, room - taken) :
			    pick_random(e, room - taken);
		if (!buf)
			break;
		buf->claim = memmgr_state_claim(buf, lru &&
						chances < MEMMGR_EVICT_CHANCES);
		if (buf->claim == MEMMGR_CLAIM_USED) {
			chances++;
			memmgr_evictable_touch(e, buf);
			continue;
		}
		set_unlink(e, buf);
		list_add_tail(&buf->evict_node, &tried);
		if (buf->claim == MEMMGR_CLAIMED)
			taken += buf->nr_pages;
	}
	found = taken >= need;
	/* All back as they were, newest first, each finding its place... */
	list_for_each_entry_reverse(buf, &tried, evict_node)
		set_relink(e, buf);
	/* ...then out go the victims, if enough, and the pinned. */
	list_for_each_entry_safe(buf, next, &tried, evict_node) {
		list_del(&buf->evict_node);
		if (buf->claim == MEMMGR_CLAIM_PINNED) {
			memmgr_evictable_del(e, buf);
			list_add_tail(&buf->evict_node, parked);
		} else if (buf->claim == MEMMGR_CLAIMED && found) {
			memmgr_evictable_del(e, buf);
			list_add_tail(&buf->evict_node, picked);
		} else if (buf->claim == MEMMGR_CLAIMED) {
			memmgr_state_unclaim(buf);
		}
	}
	/*
	 * Remembered even if a client kept changing a word (BUSY): only a
	 * client racing its own word does, and it must not make every
	 * wake-up search again.
	 */
	if (!found) {
		e->failed.gen = e->gen;
		e->failed.need = need;
		e->failed.room = room;
		e->failed.lru = lru;
	}
	return found;
}
