// SPDX-License-Identifier: GPL-2.0
/*
 * memmgrctl: memmgr's pools and clients, for people and for programs.
 *
 *   memmgrctl stats [-b] [--json] [--watch SECONDS]
 *   memmgrctl clients [-b] [--json]
 *
 * Exit status: 0 success, 1 failure, 2 usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include "libmemmgr.h"

#define PROG		"memmgrctl"
#define DEBUGFS_DIR	"/sys/kernel/debug"
#define CLIENTS_FILE	DEBUGFS_DIR "/memmgr/clients"
#define CLIENTS_HEADER	"pid comm storage_bytes exec_bytes"
#define MODULE_DIR	"/sys/module/memmgr"
#define BAR_WIDTH	50
#define WATCH_MAX	86400.0

#define EXIT_USAGE	2

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static const char usage_text[] =
"Usage: " PROG " COMMAND [OPTIONS]\n"
"\n"
"Commands:\n"
"  stats [-b] [--json] [-w SECONDS]\n"
"                 both pools, as free(1) shows memory: quota, used,\n"
"                 borrowed, pinned and free bytes, a bar per pool, and the\n"
"                 counters since memmgr was loaded\n"
"  clients [-b] [--json]\n"
"                 every open file of " MEMMGR_DEVICE " and the memory it\n"
"                 uses, from " CLIENTS_FILE "\n"
"  help           this text\n"
"\n"
"Options:\n"
"  -b, --bytes    exact bytes, instead of sizes such as 1.5Gi\n"
"  -j, --json     JSON for programs (bytes and counts as integers)\n"
"  -w, --watch SECONDS\n"
"                 print the stats again every SECONDS (fractions allowed)\n"
"                 until interrupted: on a cleared screen, or with --json one\n"
"                 object per line\n"
"  -h, --help     this text\n"
"\n"
"In stats, a pool's free bytes are the part of its quota nobody uses;\n"
"execution may also borrow storage's free part.  The storage bar shows\n"
"pinned (#), evictable (+), lent to execution (=) and free (.) bytes; the\n"
"execution bar, used (#) and free (.) bytes of execution's own quota.\n"
"\n"
"stats --json prints one object with the keys total, free, page_size,\n"
"waiters (requests held now), and storage and execution, each an object\n"
"with quota, used, borrowed, pinned, free, peak, allocs, frees, declined,\n"
"held, evictions and evicted_bytes.\n"
"clients --json prints an array of objects with the keys pid, comm,\n"
"storage_bytes and exec_bytes; comm is the command name with each byte\n"
"outside printable ASCII as \\u00XX (the byte read as ISO 8859-1).\n"
"The clients table shows a command name as " CLIENTS_FILE "\n"
"has it: space, backslash and each byte outside printable ASCII as \\ooo\n"
"(three octal digits).  PID 0 is a client whose process has no pid in\n"
"memmgrctl's pid namespace.\n"
"\n"
"Exit status: 0 on success, 1 on failure, 2 on a usage error.\n"
"stats needs access to " MEMMGR_DEVICE " (root, by default); clients\n"
"needs root (debugfs).\n";

static const char *const pool_name[MEMMGR_NR_POOLS] = {
	[MEMMGR_POOL_STORAGE] = "storage",
	[MEMMGR_POOL_EXEC] = "execution",
};

struct opts {
	bool bytes;
	bool json;
	double watch;		/* seconds; 0: print once */
};

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, PROG ": ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n\n%s", usage_text);
	va_end(ap);
	return EXIT_USAGE;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, PROG ": ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return EXIT_FAILURE;
}

static int fail_not_loaded(void)
{
	return fail("memmgr is not loaded: run 'modprobe memmgr' or 'insmod memmgr.ko'");
}

/* stdout must have reached its file: a full disk or a closed pipe fails. */
static int finish_output(int ret)
{
	if (fflush(stdout) || ferror(stdout)) {
		if (ret == EXIT_SUCCESS)
			ret = fail("writing the output: %s", strerror(errno));
	}
	return ret;
}

/* Sizes as free -h prints them: 0B, 512B, 1.5Ki, 28Mi, 1.0Gi. */
static const char *size_str(char *buf, size_t len, uint64_t bytes,
			    bool exact)
{
	static const char *const unit[] = { "B", "Ki", "Mi", "Gi", "Ti", "Pi",
					    "Ei" };
	double v = bytes;
	unsigned int u = 0;

	if (exact) {
		snprintf(buf, len, "%" PRIu64, bytes);
		return buf;
	}
	while (v >= 1023.5 && u + 1 < ARRAY_SIZE(unit)) {
		v /= 1024;
		u++;
	}
	if (!u)
		snprintf(buf, len, "%" PRIu64 "B", bytes);
	else if (v < 9.95)
		snprintf(buf, len, "%.1f%s", v, unit[u]);
	else
		snprintf(buf, len, "%.0f%s", v, unit[u]);
	return buf;
}

/* The part of @pool's quota nobody uses: the pools' free parts add up. */
static uint64_t pool_free(const struct memmgr_stats *st, int pool)
{
	const struct memmgr_pool_stats *ps = &st->pool[pool];
	uint64_t lent = st->pool[!pool].borrowed;
	uint64_t own = ps->used - ps->borrowed;

	return ps->quota > own + lent ? ps->quota - own - lent : 0;
}

/* Print a bar of @n segments (bytes and their characters) over @whole. */
static void print_bar(const char *name, const uint64_t *seg, const char *ch,
		      int n, uint64_t whole)
{
	uint64_t sum = 0;
	int i, col = 0;

	printf("%-9s [", name);
	for (i = 0; i < n; i++) {
		int end;

		sum += seg[i];
		end = whole ? (int)((sum * BAR_WIDTH + whole / 2) / whole) : 0;
		if (end > BAR_WIDTH)
			end = BAR_WIDTH;
		for (; col < end; col++)
			putchar(ch[i]);
	}
	for (; col < BAR_WIDTH; col++)
		putchar(whole ? '.' : ' ');
	printf("]%s\n", whole ? "" : " no quota");
}

static void print_bars(const struct memmgr_stats *st)
{
	const struct memmgr_pool_stats *s = &st->pool[MEMMGR_POOL_STORAGE];
	const struct memmgr_pool_stats *e = &st->pool[MEMMGR_POOL_EXEC];
	uint64_t sseg[3] = { s->pinned, s->used - s->pinned, e->borrowed };
	uint64_t eseg[1] = { e->used - e->borrowed };

	print_bar(pool_name[MEMMGR_POOL_STORAGE], sseg, "#+=", 3, s->quota);
	print_bar(pool_name[MEMMGR_POOL_EXEC], eseg, "#", 1, e->quota);
	printf("%-10s # used (storage: pinned)  + evictable  = lent to execution  . free\n",
	       "");
}

/* No figure: printed as "-". */
#define NONE	UINT64_MAX

/* A row: a name, then @n sizes. */
static void print_size_row(const char *name, const uint64_t *v, int n,
			   const struct opts *o)
{
	char buf[32];
	int i;

	printf("%-10s", name);
	for (i = 0; i < n; i++)
		printf(" %10s", v[i] == NONE ? "-" :
		       size_str(buf, sizeof(buf), v[i], o->bytes));
	putchar('\n');
}

static void print_stats_text(const struct memmgr_stats *st,
			     const struct opts *o)
{
	const struct memmgr_pool_stats *ps;
	char total[32], free[32];
	int p;

	printf("memmgr: %s reserved, %s free, %u request%s held now\n\n",
	       size_str(total, sizeof(total), st->total, o->bytes),
	       size_str(free, sizeof(free), st->free, o->bytes), st->waiters,
	       st->waiters == 1 ? "" : "s");
	printf("%-10s %10s %10s %10s %10s %10s\n", "", "quota", "used",
	       "borrowed", "pinned", "free");
	for (p = 0; p < MEMMGR_NR_POOLS; p++) {
		uint64_t v[5];

		ps = &st->pool[p];
		v[0] = ps->quota;
		v[1] = ps->used;
		v[2] = ps->borrowed;
		v[3] = p == MEMMGR_POOL_STORAGE ? ps->pinned : NONE;
		v[4] = pool_free(st, p);
		print_size_row(pool_name[p], v, 5, o);
	}
	print_size_row("total", (uint64_t[]){ st->total, st->pool[0].used +
		       st->pool[1].used, NONE, NONE, st->free }, 5, o);
	putchar('\n');
	print_bars(st);
	printf("\n%-10s %10s %10s %10s %10s %10s %10s %10s\n", "", "allocs",
	       "frees", "declined", "held", "evictions", "evicted", "peak");
	for (p = 0; p < MEMMGR_NR_POOLS; p++) {
		char evicted[32], peak[32];

		ps = &st->pool[p];
		printf("%-10s %10" PRIu64 " %10" PRIu64 " %10" PRIu64
		       " %10" PRIu64 " %10" PRIu64 " %10s %10s\n",
		       pool_name[p], (uint64_t)ps->allocs,
		       (uint64_t)ps->frees, (uint64_t)ps->declined,
		       (uint64_t)ps->held, (uint64_t)ps->evictions,
		       size_str(evicted, sizeof(evicted), ps->evicted_bytes,
				o->bytes),
		       size_str(peak, sizeof(peak), ps->peak, o->bytes));
	}
}

static void print_pool_json(const struct memmgr_stats *st, int p)
{
	const struct memmgr_pool_stats *ps = &st->pool[p];

	printf("\"%s\":{\"quota\":%" PRIu64 ",\"used\":%" PRIu64
	       ",\"borrowed\":%" PRIu64 ",\"pinned\":%" PRIu64
	       ",\"free\":%" PRIu64 ",\"peak\":%" PRIu64
	       ",\"allocs\":%" PRIu64 ",\"frees\":%" PRIu64
	       ",\"declined\":%" PRIu64 ",\"held\":%" PRIu64
	       ",\"evictions\":%" PRIu64 ",\"evicted_bytes\":%" PRIu64 "}",
	       pool_name[p], (uint64_t)ps->quota, (uint64_t)ps->used,
	       (uint64_t)ps->borrowed, (uint64_t)ps->pinned,
	       pool_free(st, p), (uint64_t)ps->peak, (uint64_t)ps->allocs,
	       (uint64_t)ps->frees, (uint64_t)ps->declined,
	       (uint64_t)ps->held, (uint64_t)ps->evictions,
	       (uint64_t)ps->evicted_bytes);
}

static void print_stats_json(const struct memmgr_stats *st)
{
	printf("{\"total\":%" PRIu64 ",\"free\":%" PRIu64
	       ",\"page_size\":%u,\"waiters\":%u,", (uint64_t)st->total,
	       (uint64_t)st->free, st->page_size, st->waiters);
	print_pool_json(st, MEMMGR_POOL_STORAGE);
	putchar(',');
	print_pool_json(st, MEMMGR_POOL_EXEC);
	puts("}");
}

/* memmgrctl reads figures only: no window or state area to map. */
static int open_device(struct memmgr **mmp)
{
	int ret = memmgr_open(mmp, MEMMGR_OPEN_NO_FAST);

	if (ret == -ENODEV)
		return fail_not_loaded();
	if (ret == -EACCES || ret == -EPERM)
		return fail(MEMMGR_DEVICE ": permission denied (run as root or as a member of its group)");
	if (ret)
		return fail(MEMMGR_DEVICE ": %s", memmgr_strerror(ret));
	return EXIT_SUCCESS;
}

static int show_stats(struct memmgr *mm, const struct opts *o)
{
	struct memmgr_lib_stats st;
	int ret = memmgr_get_stats(mm, &st);

	if (ret)
		return fail("reading the statistics: %s", memmgr_strerror(ret));
	if (o->json)
		print_stats_json(&st.kernel);
	else
		print_stats_text(&st.kernel, o);
	return finish_output(EXIT_SUCCESS);
}

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

/*
 * Sleep @seconds or until SIGINT or SIGTERM, which stay blocked outside the
 * sleep so none is lost between the check and the sleep.
 */
static void watch_sleep(double seconds, const sigset_t *unblocked)
{
	struct timespec ts = {
		.tv_sec = (time_t)seconds,
		.tv_nsec = (long)((seconds - (time_t)seconds) * 1e9),
	};

	if (!stop)
		ppoll(NULL, 0, &ts, unblocked);
}

static void watch_header(const struct opts *o)
{
	char when[64];
	time_t now = time(NULL);
	struct tm tm;

	if (!localtime_r(&now, &tm) ||
	    !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm))
		strcpy(when, "?");
	/* Home, and clear the screen. */
	printf("\033[H\033[2JEvery %gs: " PROG " stats%s    %s\n\n", o->watch,
	       o->bytes ? " --bytes" : "", when);
}

static int watch_stats(struct memmgr *mm, const struct opts *o)
{
	struct sigaction sa = { .sa_handler = on_stop };	/* no restart */
	sigset_t block, unblocked;
	int ret = EXIT_SUCCESS;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &unblocked);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!stop && ret == EXIT_SUCCESS) {
		if (!o->json)
			watch_header(o);
		ret = show_stats(mm, o);
		if (ret == EXIT_SUCCESS)
			watch_sleep(o->watch, &unblocked);
	}
	return ret;
}

/* Parse the options of a command; returns -1 when they are fine. */
static int parse_opts(int argc, char **argv, const char *cmd, bool watch,
		      struct opts *o)
{
	static const struct option longopts[] = {
		{ "bytes", no_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "watch", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":bjw:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->bytes = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'w':
			if (!watch)
				return usage_error("%s has no --watch", cmd);
			errno = 0;
			o->watch = strtod(optarg, &end);
			if (errno || end == optarg || *end ||
			    !(o->watch > 0 && o->watch <= WATCH_MAX))
				return usage_error("--watch wants seconds (0 < SECONDS <= 86400), not '%s'",
						   optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			return finish_output(EXIT_SUCCESS);
		case ':':
			return usage_error("%s needs an argument",
					   argv[optind - 1]);
		default:
			if (optopt) {
				char opt[3] = { '-', (char)optopt, '\0' };

				return usage_error("unknown option '%s'", opt);
			}
			return usage_error("unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return -1;
}

static int cmd_stats(int argc, char **argv)
{
	struct opts o = { 0 };
	struct memmgr *mm;
	int ret;

	ret = parse_opts(argc, argv, "stats", true, &o);
	if (ret >= 0)
		return ret;
	ret = open_device(&mm);
	if (ret)
		return ret;
	ret = o.watch > 0 ? watch_stats(mm, &o) : show_stats(mm, &o);
	memmgr_close(mm);
	return ret;
}

struct client {
	long pid;
	char *comm;
	uint64_t bytes[MEMMGR_NR_POOLS];
};

struct clients {
	struct client *v;
	size_t n, cap;
};

static void clients_free(struct clients *cl)
{
	size_t i;

	for (i = 0; i < cl->n; i++)
		free(cl->v[i].comm);
	free(cl->v);
}

/* A decimal number, digits only, that fits in a uint64_t. */
static bool parse_u64(const char *s, uint64_t *v)
{
	unsigned long long x;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*v = x;
	return true;
}

/*
 * Split @s at each single space into exactly @n fields, which may be empty;
 * false if it has another number of them.
 */
static bool split_fields(char *s, char **field, int n)
{
	int i = 0;

	for (;;) {
		char *space = strchr(s, ' ');

		if (i == n)
			return false;
		field[i++] = s;
		if (!space)
			break;
		*space = '\0';
		s = space + 1;
	}
	return i == n;
}

/*
 * A byte that the clients file writes as itself; the kernel writes every
 * other byte as \ooo: space, backslash and all that is not printable ASCII.
 */
static bool comm_plain(unsigned char ch)
{
	return ch > ' ' && ch < 0x7f && ch != '\\';
}

/*
 * Undo the clients file's escaping of a command name, in place: \ooo (three
 * octal digits, 001 to 377) is that byte.  False if @s is not escaped as
 * the kernel escapes, e.g. a backslash without three octal digits, or a
 * byte that should have been escaped.
 */
static bool unescape_comm(char *s)
{
	const char *in = s;
	char *out = s;

	while (*in) {
		unsigned char ch = *in;

		if (ch == '\\') {
			unsigned int v = 0;
			int i;

			for (i = 1; i <= 3; i++) {
				if (in[i] < '0' || in[i] > '7')
					return false;
				v = v * 8 + (in[i] - '0');
			}
			if (!v || v > 0377)
				return false;
			*out++ = (char)v;
			in += 4;
		} else if (comm_plain(ch)) {
			*out++ = *in++;
		} else {
			return false;
		}
	}
	*out = '\0';
	return true;
}

/*
 * One line "pid comm storage_bytes exec_bytes" into @c, whose comm, the
 * command name unescaped, is then the caller's to free.  pid may be 0 (no
 * pid in our pid namespace); comm may be empty.
 * Return: 0, -EINVAL (malformed) or -ENOMEM.
 */
static int parse_client(const char *line, struct client *c)
{
	char *work = strdup(line), *field[4];
	uint64_t pid;
	int ret = -EINVAL;

	if (!work)
		return -ENOMEM;
	if (!split_fields(work, field, 4) || !parse_u64(field[0], &pid) ||
	    pid > INT32_MAX || !unescape_comm(field[1]) ||
	    !parse_u64(field[2], &c->bytes[MEMMGR_POOL_STORAGE]) ||
	    !parse_u64(field[3], &c->bytes[MEMMGR_POOL_EXEC]))
		goto out_free;
	c->pid = pid;
	c->comm = strdup(field[1]);
	ret = c->comm ? 0 : -ENOMEM;
out_free:
	free(work);
	return ret;
}

/* Add @c to @cl, which takes its comm. */
static int clients_add(struct clients *cl, const struct client *c)
{
	if (cl->n == cl->cap) {
		size_t cap = cl->cap ? 2 * cl->cap : 16;
		struct client *v = realloc(cl->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		cl->v = v;
		cl->cap = cap;
	}
	cl->v[cl->n++] = *c;
	return 0;
}

/* Read the clients file; on failure, say why and return EXIT_FAILURE. */
static int read_clients(FILE *f, struct clients *cl)
{
	struct client c;
	size_t cap = 0;
	char *line = NULL;
	ssize_t len;
	int ret = EXIT_SUCCESS, err;
	unsigned int nr = 0;

	while ((len = getline(&line, &cap, f)) >= 0) {
		nr++;
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		if (nr == 1 && !strcmp(line, CLIENTS_HEADER))
			continue;
		err = nr == 1 ? -EINVAL : parse_client(line, &c);
		if (err == -EINVAL) {
			ret = fail(CLIENTS_FILE ":%u: unexpected line '%.60s'",
				   nr, line);
			goto out_free;
		}
		if (!err) {
			err = clients_add(cl, &c);
			if (err)
				free(c.comm);
		}
		if (err) {
			ret = fail("%s", strerror(-err));
			goto out_free;
		}
	}
	if (ferror(f))
		ret = fail(CLIENTS_FILE ": %s", strerror(errno));
	else if (!nr)
		ret = fail(CLIENTS_FILE ": empty, expected '" CLIENTS_HEADER "'");
out_free:
	free(line);
	return ret;
}

/* Why the clients file cannot be read. */
static int fail_clients(int err)
{
	struct statfs sfs;

	if (err == EACCES || err == EPERM)
		return fail(CLIENTS_FILE ": permission denied (debugfs is root-only: run as root)");
	if (err != ENOENT)
		return fail(CLIENTS_FILE ": %s", strerror(err));
	if (access(MODULE_DIR, F_OK))
		return fail_not_loaded();
	if (statfs(DEBUGFS_DIR, &sfs) || sfs.f_type != DEBUGFS_MAGIC)
		return fail("debugfs is not mounted on " DEBUGFS_DIR
			    ": run 'mount -t debugfs none " DEBUGFS_DIR "'");
	return fail("the loaded memmgr module has no " CLIENTS_FILE
		    ": it is too old to list its clients");
}

/*
 * @s as a JSON string, each byte the character of the same code point: a
 * byte outside printable ASCII is \u00XX, so any name comes back exactly
 * (as ISO 8859-1) and the output is ASCII, valid whatever the bytes are.
 */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = *s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* The length of @s escaped as the clients file has it. */
static int comm_escaped_len(const char *s)
{
	int len = 0;

	for (; *s; s++)
		len += comm_plain(*s) ? 1 : 4;
	return len;
}

/* @s escaped as the clients file has it (one word), padded to @width. */
static void print_comm_escaped(const char *s, int width)
{
	int len = comm_escaped_len(s);

	for (; *s; s++) {
		unsigned char ch = *s;

		if (comm_plain(ch))
			putchar(ch);
		else
			printf("\\%03o", ch);
	}
	printf("%*s", len < width ? width - len : 0, "");
}

static void print_clients_json(const struct clients *cl)
{
	size_t i;

	putchar('[');
	for (i = 0; i < cl->n; i++) {
		printf("%s{\"pid\":%ld,\"comm\":", i ? "," : "", cl->v[i].pid);
		json_string(cl->v[i].comm);
		printf(",\"storage_bytes\":%" PRIu64 ",\"exec_bytes\":%" PRIu64
		       "}", cl->v[i].bytes[MEMMGR_POOL_STORAGE],
		       cl->v[i].bytes[MEMMGR_POOL_EXEC]);
	}
	puts("]");
}

/* Sums of figures from a file: they stop at UINT64_MAX. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static void print_clients_text(const struct clients *cl, const struct opts *o)
{
	uint64_t sum[MEMMGR_NR_POOLS] = { 0 };
	char b[2][32];
	int width = 16;
	size_t i;

	for (i = 0; i < cl->n; i++) {
		int len = comm_escaped_len(cl->v[i].comm);

		if (len > width)
			width = len;
	}
	printf("%8s %-*s %10s %10s\n", "PID", width, "COMM", "STORAGE",
	       "EXEC");
	for (i = 0; i < cl->n; i++) {
		const struct client *c = &cl->v[i];

		sum[0] = add_sat(sum[0], c->bytes[0]);
		sum[1] = add_sat(sum[1], c->bytes[1]);
		printf("%8ld ", c->pid);
		print_comm_escaped(c->comm, width);
		printf(" %10s %10s\n",
		       size_str(b[0], sizeof(b[0]), c->bytes[0], o->bytes),
		       size_str(b[1], sizeof(b[1]), c->bytes[1], o->bytes));
	}
	printf("%8s %-*s %10s %10s\n", "", width, "total",
	       size_str(b[0], sizeof(b[0]), sum[0], o->bytes),
	       size_str(b[1], sizeof(b[1]), sum[1], o->bytes));
}

static int cmd_clients(int argc, char **argv)
{
	struct clients cl = { 0 };
	struct opts o = { 0 };
	FILE *f;
	int ret;

	ret = parse_opts(argc, argv, "clients", false, &o);
	if (ret >= 0)
		return ret;
	f = fopen(CLIENTS_FILE, "re");
	if (!f)
		return fail_clients(errno);
	ret = read_clients(f, &cl);
	fclose(f);
	if (ret == EXIT_SUCCESS) {
		if (o.json)
			print_clients_json(&cl);
		else
			print_clients_text(&cl, &o);
		ret = finish_output(ret);
	}
	clients_free(&cl);
	return ret;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "-h")) {
		if (argc > 2)
			return usage_error("unexpected argument '%s'", argv[2]);
		fputs(usage_text, stdout);
		return finish_output(EXIT_SUCCESS);
	}
	if (!strcmp(cmd, "stats"))
		return cmd_stats(argc - 1, argv + 1);
	if (!strcmp(cmd, "clients"))
		return cmd_clients(argc - 1, argv + 1);
	return usage_error("unknown command '%s'", cmd);
}
