// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr_sqlite_multi: several SQLite processes at once, each with its own
 * file database, for memmgr_sqlite_test.sh.
 *
 *   memmgr_sqlite_multi [-n PROCS] [-r ROWS] [-p PASSES] [-c CACHE_KIB] DIR
 *
 * forks PROCS children (default 3).  Child i installs what the
 * environment variable MEMMGR_SQLITE names ("pcache", "malloc",
 * "pcache,malloc"; unset or empty: stock SQLite), builds DIR/multi-i.db
 * (ROWS rows of pseudo-random data seeded by i, an index), waits until
 * every child has built its own, then runs PASSES passes of queries,
 * updates and inserts with a page cache of CACHE_KIB KiB (default 64 MiB:
 * larger than the database, so that what a child loses is what memmgr
 * evicted).  Each query's result is one line, its rows and a hash of
 * every value in them:
 *
 *   multi I pass P QUERY: rows N hash H
 *
 * printed on stdout by the parent, child by child in order, once every
 * child has ended: the same with stock SQLite as with memmgr's page cache
 * and allocator.  Each child also prints one line on stderr when it ends:
 *
 *   multi I: db_bytes N fetches N hits N misses N evicted N fallbacks N
 *
 * (the database's size once built, the page cache's counters).  Exit
 * status 0 when every child succeeded.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "memmgr_sqlite.h"

#define MAX_PROCS 16

struct opts {
	int procs;
	int rows;
	int passes;
	int cache_kib;
	const char *dir;
};

struct child {
	int id;
	sqlite3 *db;
	uint64_t rnd;
};

static void die(struct child *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "multi %d: ", c->id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (c->db)
		fprintf(stderr, ": %s", sqlite3_errmsg(c->db));
	fputc('\n', stderr);
	exit(1);
}

static uint32_t rnd(struct child *c)
{
	c->rnd = c->rnd * 6364136223846793005ULL + 1442695040888963407ULL;
	return c->rnd >> 33;
}

static void rnd_text(struct child *c, char *buf, int min, int max)
{
	int len = min + rnd(c) % (max - min + 1);
	int i;

	for (i = 0; i < len; i++)
		buf[i] = 'a' + rnd(c) % 26;
	buf[len] = 0;
}

static void exec(struct child *c, const char *sql)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die(c, "%s", sql);
}

/* FNV-1a over the bytes of a value, then a separator. */
static uint64_t hash_bytes(uint64_t h, const unsigned char *p, int n)
{
	int i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return (h ^ 0xff) * 1099511628211ULL;
}

/* Run one statement to the end; its rows into *rows and *h. */
static void run(struct child *c, sqlite3_stmt *st, int *rows, uint64_t *h)
{
	int rc, i;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		(*rows)++;
		for (i = 0; i < sqlite3_column_count(st); i++) {
			const unsigned char *v = sqlite3_column_text(st, i);

			if (!v)
				*h = hash_bytes(*h, (const unsigned char *)"\0N", 2);
			else
				*h = hash_bytes(*h, v,
						sqlite3_column_bytes(st, i));
		}
	}
	if (rc != SQLITE_DONE)
		die(c, "step: %s", sqlite3_sql(st));
	sqlite3_reset(st);
}

static sqlite3_stmt *prepare(struct child *c, const char *sql)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		die(c, "sqlite3_prepare_v2: %s", sql);
	return st;
}

/* One query with up to one integer parameter, run @n times. */
static void query(struct child *c, int pass, const char *name,
		  const char *sql, int n, int param_mod)
{
	sqlite3_stmt *st = prepare(c, sql);
	uint64_t h = 14695981039346656037ULL;
	int rows = 0, i;

	for (i = 0; i < n; i++) {
		if (param_mod)
			sqlite3_bind_int(st, 1, rnd(c) % param_mod);
		run(c, st, &rows, &h);
	}
	sqlite3_finalize(st);
	printf("multi %d pass %d %s: rows %d hash %016" PRIx64 "\n", c->id,
	       pass, name, rows, h);
}

/* A statement that changes rows: how many it changed. */
static void change(struct child *c, int pass, const char *name,
		   const char *sql)
{
	sqlite3_stmt *st = prepare(c, sql);
	uint64_t h = 0;
	int rows = 0;

	sqlite3_bind_int(st, 1, pass);
	run(c, st, &rows, &h);
	sqlite3_finalize(st);
	printf("multi %d pass %d %s: changes %d\n", c->id, pass, name,
	       sqlite3_changes(c->db));
}

static void build(struct child *c, int nrows)
{
	sqlite3_stmt *st;
	char b[128], t[256];
	int i;

	exec(c, "CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c TEXT)");
	exec(c, "BEGIN");
	st = prepare(c, "INSERT INTO t(a, b, c) VALUES (?1, ?2, ?3)");
	for (i = 0; i < nrows; i++) {
		sqlite3_bind_int(st, 1, rnd(c) % 10000);
		rnd_text(c, b, 20, 100);
		rnd_text(c, t, 0, 200);
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, t, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			die(c, "insert");
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	exec(c, "CREATE INDEX t_a ON t(a)");
	exec(c, "COMMIT");
}

static void workload(struct child *c, int pass)
{
	query(c, pass, "scan",
	      "SELECT count(*), sum(a), sum(length(b)), sum(length(c)) FROM t",
	      1, 0);
	/* Through the index: the table in random order, and no sort. */
	query(c, pass, "group",
	      "SELECT a, count(*), sum(id), max(length(b)), min(c) FROM t GROUP BY a",
	      1, 0);
	query(c, pass, "range",
	      "SELECT count(*), sum(length(c)), max(id) FROM t WHERE a BETWEEN ?1 AND ?1 + 20",
	      300, 10000);
	query(c, pass, "rowid",
	      "SELECT a, b, c FROM t WHERE id = ?1", 2000, 60000);
	change(c, pass, "update",
	       "UPDATE t SET a = (a * 31 + ?1) % 10000, c = substr(c, 2) || 'x' WHERE id % 7 = ?1 % 7");
	change(c, pass, "insert",
	       "INSERT INTO t(a, b, c) SELECT a + 1, b || 'y', c FROM t WHERE id % 211 = ?1");
	change(c, pass, "delete", "DELETE FROM t WHERE id % 307 = ?1 + 3");
	query(c, pass, "sort",
	      "SELECT id, a, b FROM t ORDER BY b, id LIMIT 50 OFFSET 1000", 1, 0);
	query(c, pass, "check", "PRAGMA integrity_check", 1, 0);
}

static void install(struct child *c)
{
	const char *env = getenv("MEMMGR_SQLITE");
	int flags, rc;

	if (!env || !*env)
		return;
	flags = memmgr_sqlite_parse(env);
	if (flags <= 0)
		die(c, "MEMMGR_SQLITE=%s: want pcache, malloc or pcache,malloc",
		    env);
	rc = memmgr_sqlite_install(flags);
	if (rc)
		die(c, "memmgr_sqlite_install(%s): %s", env, strerror(-rc));
}

static int64_t db_bytes(struct child *c)
{
	sqlite3_stmt *st = prepare(c, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size");
	int64_t n;

	if (sqlite3_step(st) != SQLITE_ROW)
		die(c, "page_count");
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Child @id: build, tell the parent (@ready), wait for everyone (@go). */
static void child(const struct opts *o, int id, int ready, int go)
{
	struct memmgr_sqlite_stats s;
	struct child c = { .id = id, .rnd = 0x5eed0000ULL + id };
	char path[4096], sql[64], byte = 0;
	sqlite3_int64 cur, heap;
	int64_t bytes;
	int pass;

	install(&c);
	snprintf(path, sizeof(path), "%s/multi-%d.db", o->dir, id);
	unlink(path);
	if (sqlite3_open(path, &c.db) != SQLITE_OK)
		die(&c, "open %s", path);
	snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", o->cache_kib);
	exec(&c, sql);
	build(&c, o->rows);
	bytes = db_bytes(&c);
	/* Closed before waiting: a child that died must not hang the rest. */
	if (write(ready, &byte, 1) != 1 || close(ready) ||
	    read(go, &byte, 1) != 1)
		die(&c, "the parent is gone");
	close(go);
	for (pass = 1; pass <= o->passes; pass++)
		workload(&c, pass);
	if (sqlite3_close(c.db) != SQLITE_OK)
		die(&c, "close");
	c.db = NULL;
	memmgr_sqlite_get_stats(&s);
	sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &heap, 0);
	fprintf(stderr, "multi %d: db_bytes %" PRId64 " heap_peak %lld fetches %"
		PRIu64 " hits %" PRIu64 " misses %" PRIu64 " evicted %" PRIu64
		" fallbacks %" PRIu64 "\n", id, bytes, heap, s.fetches, s.hits,
		s.misses, s.evicted, s.fallbacks);
	fflush(stdout);
	exit(0);
}

/* Copy a child's output to stdout, to its end. */
static void drain(int fd)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			fwrite(buf, 1, n, stdout);
	close(fd);
}

static int run_children(const struct opts *o)
{
	int ready[2], go[2], out[MAX_PROCS];
	pid_t pid[MAX_PROCS];
	int i, n = 0, status, failed = 0;
	char byte;

	if (pipe(ready) || pipe(go))
		return perror("pipe"), 1;
	fflush(stdout);
	for (i = 0; i < o->procs; i++) {
		int p[2];

		if (pipe(p))
			return perror("pipe"), 1;
		pid[i] = fork();
		if (pid[i] < 0)
			return perror("fork"), 1;
		if (pid[i] == 0) {
			close(ready[0]);
			close(go[1]);
			close(p[0]);
			dup2(p[1], STDOUT_FILENO);
			close(p[1]);
			child(o, i, ready[1], go[0]);
		}
		close(p[1]);
		out[i] = p[0];
	}
	close(ready[1]);
	close(go[0]);
	/* Children that all died before go closed its other end. */
	signal(SIGPIPE, SIG_IGN);
	/* Every child built its database (or died): all go at once. */
	while (n < o->procs && read(ready[0], &byte, 1) == 1)
		n++;
	for (i = 0; i < o->procs; i++)
		if (write(go[1], &byte, 1) != 1)
			break;
	close(go[1]);
	close(ready[0]);
	for (i = 0; i < o->procs; i++)
		drain(out[i]);
	for (i = 0; i < o->procs; i++) {
		if (waitpid(pid[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			fprintf(stderr, "multi %d: failed (status %#x)\n", i,
				status);
			failed = 1;
		}
	}
	return failed;
}

int main(int argc, char **argv)
{
	struct opts o = { .procs = 3, .rows = 40000, .passes = 3,
			  .cache_kib = 65536 };
	int opt;

	while ((opt = getopt(argc, argv, "n:r:p:c:")) != -1) {
		switch (opt) {
		case 'n':
			o.procs = atoi(optarg);
			break;
		case 'r':
			o.rows = atoi(optarg);
			break;
		case 'p':
			o.passes = atoi(optarg);
			break;
		case 'c':
			o.cache_kib = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || o.procs < 1 || o.procs > MAX_PROCS ||
	    o.rows < 1 || o.passes < 1 || o.cache_kib < 1)
		goto usage;
	o.dir = argv[optind];
	return run_children(&o);
usage:
	fprintf(stderr, "usage: %s [-n PROCS] [-r ROWS] [-p PASSES] [-c CACHE_KIB] DIR\n",
		argv[0]);
	return 2;
}
