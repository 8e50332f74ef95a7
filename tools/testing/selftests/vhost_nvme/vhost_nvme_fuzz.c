// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme fuzzer: a hostile guest, a hostile VMM and hostile ioctl
 * callers, each checked against what must hold whatever they do.
 *
 *   vhost_nvme_fuzz [--mode sqe|fast|state|ioctl|all] [--seed N]
 *                   [--seconds S] [--commands N] [--actions N]
 *                   [--sequences N] [--backend null_blk|file|brd]
 *
 * sqe    One device, four queue pairs on two workers, kept full of random
 *        commands: most well-formed (their data is checked), the rest
 *        adversarial in every field and PRP shape, and rewritten by a
 *        second thread while in flight; now and then a bogus doorbell.
 * fast   Volume: the same generators with small transfers (MDTS 16 or
 *        32 KiB, a 2 MiB fuzz area), half of the commands adversarial,
 *        no golden commands and no rewriting thread, the queues kept
 *        full, on a null_blk of its own that keeps no data (so that the
 *        module's work is most of the cost). Every completion and guest
 *        memory are checked as in sqe mode.
 * state  The well-formed part of the sqe workload, on short queues with
 *        small transfers, while
 *        the VMM stops, resets, deletes queues, switches doorbell modes,
 *        tunes, changes and shrinks the memory table under I/O, and
 *        closes the device with I/O in flight and opens a new one.
 * ioctl  Four threads of random ioctls on one fd that a fifth closes and
 *        reopens; non-owners (a forked child, a process the fd was sent
 *        to); an owner killed with I/O in flight.
 * all    The four in turn, 40/20/20/20 % of --seconds (the default).
 *
 * --commands, --actions and --sequences end the sqe and fast, the state
 * and the ioctl mode once they have done that many (0: no limit); the
 * time limit holds as well.
 *
 * A run is a function of the seed as far as the kernel's timing allows:
 * each queue and thread draws from its own stream. A violation names the
 * seed, the command's sequence number and its SQE bytes. Any wait longer
 * than 10 s is a hang; the run then fails and exits at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "guest.h"
#include "nullb.h"

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)		((a) < (b) ? (a) : (b))
#define DIV_UP(n, d)		(((n) + (d) - 1) / (d))

#define NS_PER_MS		1000000ull
#define NS_PER_SEC		1000000000ull
/* One completion, ioctl or wait taking longer than this is a hang. */
#define HANG_NS			(10 * NS_PER_SEC)
#define MAX_PRINTED		20

/* ---- run-wide state: options, violations, the summary line ---------- */

struct run_stats {
	const char *mode;
	__u64 commands, completions, errors, queue_errors;
	__u64 actions, sequences, ioctls;
	unsigned long violations;
	bool summarized;
};

static struct run_stats cur = { .mode = "setup" };
static __u64 opt_seed = 1;
static int test_no;
static pthread_mutex_t viol_lock = PTHREAD_MUTEX_INITIALIZER;

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

/* For results we have no use for; the compiler insists they are used. */
static void ignore(long rc)
{
	(void)rc;
}

static void violation(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void violation(const char *fmt, ...)
{
	char msg[1536];
	unsigned long n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&viol_lock);
	n = __atomic_add_fetch(&cur.violations, 1, __ATOMIC_RELAXED);
	if (n <= MAX_PRINTED)
		printf("# VIOLATION %lu [%s seed=%llu]: %s\n", n, cur.mode,
		       (unsigned long long)opt_seed, msg);
	else if (n == MAX_PRINTED + 1)
		printf("# (more violations: counted, not printed)\n");
	pthread_mutex_unlock(&viol_lock);
}

/*
 * dprintf, not stdio: the watchdog prints it while another thread may hang
 * holding stdout's lock (so it does not flush either: our lines are
 * line-buffered, only a partial one can be pending).
 */
static void summary_to(bool flush)
{
	unsigned long long seed = opt_seed;
	struct run_stats *s = &cur;
	unsigned long v = __atomic_load_n(&s->violations, __ATOMIC_RELAXED);

	if (s->summarized)
		return;
	s->summarized = true;
	if (flush)
		fflush(stdout);
	if (!strcmp(s->mode, "sqe") || !strcmp(s->mode, "fast"))
		dprintf(1, "fuzz %s: seed=%llu commands=%llu completions=%llu errors=%llu queue_errors=%llu violations=%lu\n",
			s->mode, seed, (unsigned long long)s->commands,
			(unsigned long long)s->completions,
			(unsigned long long)s->errors,
			(unsigned long long)s->queue_errors, v);
	else if (!strcmp(s->mode, "state"))
		dprintf(1, "fuzz state: seed=%llu actions=%llu commands=%llu violations=%lu\n",
			seed, (unsigned long long)s->actions,
			(unsigned long long)s->commands, v);
	else if (!strcmp(s->mode, "ioctl"))
		dprintf(1, "fuzz ioctl: seed=%llu sequences=%llu ioctls=%llu violations=%lu\n",
			seed,
			(unsigned long long)__atomic_load_n(&s->sequences,
							    __ATOMIC_RELAXED),
			(unsigned long long)__atomic_load_n(&s->ioctls,
							    __ATOMIC_RELAXED),
			v);
}

static void summary(void)
{
	summary_to(true);
}

static void new_mode(const char *mode)
{
	memset(&cur, 0, sizeof(cur));
	cur.mode = mode;
	test_no++;
}

/* ---- children: none may outlive us ---------------------------------- */

static pid_t kids[16];

static void kid_add(pid_t pid)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(kids); i++) {
		if (!__atomic_load_n(&kids[i], __ATOMIC_RELAXED)) {
			__atomic_store_n(&kids[i], pid, __ATOMIC_RELEASE);
			return;
		}
	}
}

static void kid_del(pid_t pid)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(kids); i++)
		if (__atomic_load_n(&kids[i], __ATOMIC_ACQUIRE) == pid)
			__atomic_store_n(&kids[i], 0, __ATOMIC_RELEASE);
}

static void kill_kids(void)
{
	unsigned int i;
	int n;

	for (i = 0; i < ARRAY_SIZE(kids); i++) {
		pid_t pid = __atomic_load_n(&kids[i], __ATOMIC_ACQUIRE);

		if (pid <= 0)
			continue;
		kill(pid, SIGKILL);
		/* A child stuck in the kernel may never be reaped: bounded. */
		for (n = 0; n < 100 && waitpid(pid, NULL, WNOHANG) == 0; n++)
			guest_msleep(20);
		kids[i] = 0;
	}
}

/*
 * A child process that must not outlive us, and exits if we are already
 * gone by the time it runs.
 */
static pid_t fork_kid(void)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		/* Whatever happens, not longer than the longest run. */
		alarm(120);
		return 0;
	}
	if (pid > 0)
		kid_add(pid);
	return pid;
}

static int wait_kid(pid_t pid, const char *what);

/* ---- the watchdog: a wait over 10 s, or the run over its budget ---- */

#define WD_SLOTS	16

struct wd_slot {
	__u64 since;		/* start of the current wait, 0: none */
	char what[128];
};

static struct wd_slot wd_slots[WD_SLOTS];
static int wd_used;
static __thread int wd_me = -1;
static __u64 wd_deadline;
static int wd_quit;

static struct wd_slot *wd_slot(void)
{
	if (wd_me < 0) {
		wd_me = __atomic_fetch_add(&wd_used, 1, __ATOMIC_RELAXED);
		if (wd_me >= WD_SLOTS)
			wd_me = WD_SLOTS - 1;
	}
	return &wd_slots[wd_me];
}

static void wd_begin(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void wd_begin(const char *fmt, ...)
{
	struct wd_slot *s = wd_slot();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->what, sizeof(s->what), fmt, ap);
	va_end(ap);
	__atomic_store_n(&s->since, now_ns(), __ATOMIC_RELEASE);
}

static void wd_end(void)
{
	if (wd_me >= 0)
		__atomic_store_n(&wd_slots[wd_me].since, 0, __ATOMIC_RELEASE);
}

static void __attribute__((noreturn)) wd_fatal(const char *what)
{
	unsigned long n = __atomic_add_fetch(&cur.violations, 1,
					     __ATOMIC_RELAXED);

	dprintf(1, "# hang: %s\n", what);
	dprintf(1, "# VIOLATION %lu [%s seed=%llu]: hang: %s\n", n, cur.mode,
		(unsigned long long)opt_seed, what);
	summary_to(false);
	dprintf(1, "not ok %d fuzz_%s # hang\n", test_no, cur.mode);
	kill_kids();
	_exit(1);
}

static void *wd_fn(void *arg)
{
	char what[192];
	int i;

	while (!__atomic_load_n(&wd_quit, __ATOMIC_ACQUIRE)) {
		__u64 now;

		guest_msleep(100);
		now = now_ns();
		for (i = 0; i < WD_SLOTS; i++) {
			__u64 since = __atomic_load_n(&wd_slots[i].since,
						      __ATOMIC_ACQUIRE);

			if (since && now > since && now - since > HANG_NS) {
				snprintf(what, sizeof(what),
					 "%.128s: no return for %llu s",
					 wd_slots[i].what,
					 (unsigned long long)((now - since) /
							      NS_PER_SEC));
				wd_fatal(what);
			}
		}
		if (now > wd_deadline)
			wd_fatal("the run as a whole: --seconds + 25 s have passed");
	}
	return NULL;
}

static int wait_kid(pid_t pid, const char *what)
{
	int status = 0;

	wd_begin("waitpid for %s", what);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	wd_end();
	kid_del(pid);
	return status;
}

/* ---- PRNG: splitmix64 to seed, xorshift64* streams ------------------ */

struct rng {
	__u64 s;
};

static __u64 splitmix64(__u64 *x)
{
	__u64 z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Stream @stream of the run's seed: independent of the other streams. */
static void rng_init(struct rng *r, __u64 stream, __u64 sub)
{
	__u64 x = opt_seed ^ (stream * 0xd1b54a32d192ed03ull) ^
		  (sub * 0x8cb92ba72f3d8dd7ull);

	splitmix64(&x);
	r->s = splitmix64(&x) | 1;
}

static __u64 rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

/* 0..n-1 (0 for n == 0) */
static __u32 rnd_below(struct rng *r, __u32 n)
{
	return (__u32)(((rnd(r) >> 32) * n) >> 32);
}

static bool chance(struct rng *r, unsigned int pct)
{
	return rnd_below(r, 100) < pct;
}

static void rnd_fill(struct rng *r, void *buf, size_t len)
{
	__u8 *p = buf;
	__u64 v;

	while (len >= 8) {
		v = rnd(r);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	v = rnd(r);
	memcpy(p, &v, len);
}

static const char *hex(const void *buf, size_t len, char *out, size_t size)
{
	const __u8 *p = buf;
	size_t i, n = 0;

	out[0] = 0;
	for (i = 0; i < len && n + 4 < size; i++) {
		int k = snprintf(out + n, size - n, "%02x%s", p[i],
				 i % 4 == 3 && i + 1 < len ? " " : "");

		if (k < 0)
			break;
		n += k;
	}
	return out;
}

/* The first byte of @p[0..n) that is not @c, or -1. */
static long first_not(const __u8 *p, int c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != (__u8)c)
			return i;
	return -1;
}

static bool all_zero(const __u8 *p, size_t n)
{
	return first_not(p, 0, n) < 0;
}

/* The CPUs online, as a VHOST_NVME_MAX_CPUS bitmap; how many. */
static int online_cpus(__u64 *mask)
{
	const int max = VHOST_NVME_MAX_CPUS;
	FILE *f = fopen("/sys/devices/system/cpu/online", "r");
	char buf[512], *p = buf;
	cpu_set_t set;
	int n = 0, i;

	memset(mask, 0, max / 8);
	if (f && fgets(buf, sizeof(buf), f)) {
		while (*p >= '0' && *p <= '9') {
			long a = strtol(p, &p, 10), b = a;

			if (*p == '-')
				b = strtol(p + 1, &p, 10);
			for (; a <= b && a < max; a++, n++)
				mask[a / 64] |= 1ull << (a % 64);
			if (*p != ',')
				break;
			p++;
		}
	}
	if (f)
		fclose(f);
	if (n || sched_getaffinity(0, sizeof(set), &set))
		return n;
	for (i = 0; i < max && i < CPU_SETSIZE; i++) {
		if (CPU_ISSET(i, &set)) {
			mask[i / 64] |= 1ull << (i % 64);
			n++;
		}
	}
	return n;
}

/* A random non-empty subset of @online (at least one CPU). */
static void cpu_subset(struct rng *r, const __u64 *online, __u64 *out)
{
	const int words = VHOST_NVME_MAX_CPUS / 64;
	int i, tries;

	for (tries = 0; tries < 64; tries++) {
		bool any = false;

		for (i = 0; i < words; i++) {
			out[i] = online[i] & rnd(r);
			any |= out[i] != 0;
		}
		if (any)
			return;
	}
	memcpy(out, online, words * 8);
}

/* ==== the I/O modes (sqe, state) ====================================== */

#define NQ		4		/* queue pairs, qid 1..NQ */
#define NWORKERS	2
#define MEM_SIZE	(64ull << 20)
#define MEM_PAGES	((int)(MEM_SIZE >> GUEST_PAGE_SHIFT))
#define SQ_MAX		256		/* entries: 4 pages of ring */
#define CQ_MAX		256		/* entries: 1 page of ring */
#define STATE_Q_MAX	64		/* state mode: short drains */
#define FUZZ_BYTES	(48ull << 20)
#define SMALL_FUZZ_BYTES (2ull << 20)	/* fast and state modes */
#define GOLD_BYTES	(8ull << 20)
#define GOLD_MAX_BYTES	(64u << 10)	/* per golden command */
#define CANARY		0xc5
#define FILL		0xa5		/* golden read buffers */
#define R2_CANARY	0xcb		/* what replaced region 2 */
#define R2_GPA		(1ull << 30)
#define R2_SIZE		(1ull << 20)
#define R3_GPA		(2ull << 30)
#define R3_SIZE		(1ull << 20)
#define TICK_NS		(20 * NS_PER_MS)

/*
 * Guest memory, in 4 KiB pages. Every page has one role. Reads - the
 * device writing guest memory - only ever target scratch, the targetable
 * list pool and SQ slots the device has fetched already; everything the
 * fuzzer relies on (CQ rings, doorbell pages, golden buffers, the lists of
 * well-formed and of hostile read commands) is out of their reach, so any
 * change there is the device's doing. Scratch is last, so that the last
 * page of memory is one a read may straddle out of.
 */
#define PG_DBS		0
#define PG_EIS		1
#define PG_Q_FIRST	2
#define PG_Q_STRIDE	7	/* canary, CQ ring, canary, SQ ring (4) */
#define PG_CQ(q)	(PG_Q_FIRST + ((q) - 1) * PG_Q_STRIDE + 1)
#define PG_SQ(q)	(PG_Q_FIRST + ((q) - 1) * PG_Q_STRIDE + 3)
#define GSLOTS		64
#define GSLOT_PAGES	17	/* 64 KiB at any dword offset */
#define PG_GOLD		(PG_Q_FIRST + NQ * PG_Q_STRIDE)
#define PG_GCANARY(s)	(PG_GOLD + (s) * (GSLOT_PAGES + 1))
#define PG_GSLOT(s)	(PG_GCANARY(s) + 1)
#define PG_PLAUS	(PG_GCANARY(GSLOTS) + 1)
#define PLAUS_PAGES	1024
#define PG_HPROT	(PG_PLAUS + PLAUS_PAGES)
#define HPROT_PAGES	512
#define PG_HTGT		(PG_HPROT + HPROT_PAGES)
#define HTGT_PAGES	512
#define PG_SCRATCH	(PG_HTGT + HTGT_PAGES)

/* Where a command's list pages come from. */
enum {
	POOL_PLAUS,	/* well-formed commands: no read lands here */
	POOL_HPROT,	/* hostile reads' lists, DSM ranges: the same */
	POOL_HTGT,	/* hostile writes' lists: reads and TOCTOU here */
	NPOOLS,
};

struct pool {
	int top;
	__u16 *stack;
};

enum cmd_kind {
	K_FLUSH, K_FUZZ_RW, K_FUZZ_WZ, K_FUZZ_DSM,
	K_GOLD_W, K_GOLD_R, K_GOLD_WZ, K_GOLD_DSM,
	K_HOSTILE,
};

#define CF_WELL_FORMED	(1u << 0)	/* must complete with Success */
#define CF_MUST_FAIL	(1u << 1)	/* must not, unless rewritten */
#define CF_R2		(1u << 2)	/* its data is in region 2 */
#define CF_TOCTOU	(1u << 3)	/* the TOCTOU thread may rewrite it */

#define CMD_MAX_LISTS	8

/* One command from submission to completion (or to being forgotten). */
struct cmd {
	bool live, late;		/* late: reported as hung */
	__u8 kind, flags, pool, nlist, gpages;
	__u16 idx, cid, slot;
	__u16 list[CMD_MAX_LISTS];
	__u16 pin_first, pin_n;		/* SQ slots a read targets */
	__s16 gslot;
	__u16 goff;
	__u8 gperm[GSLOT_PAGES];
	__u32 glba, gnlb, gen;		/* golden range, relative */
	__u32 r2_epoch;
	__u64 iter;			/* commands submitted before it */
	__u64 t_submit;
	const char *what;
	struct nvme_sqe sqe;		/* as written to the SQ */
};

/* The I/O modes. */
enum io_kind { IO_SQE, IO_FAST, IO_STATE };

enum q_state { Q_NONE, Q_ACTIVE, Q_QUIESCE, Q_BOGUS };
enum { BOGUS_SQ, BOGUS_CQ, BOGUS_CQ_AHEAD, NBOGUS };
enum { CID_FREE, CID_LIVE, CID_DONE };

struct fq {
	__u16 qid;
	enum q_state state;
	struct guest_sq *sq;
	struct guest_cq *cq;
	__u32 sq_entries, cq_entries;
	__u16 worker;
	struct rng rng;
	__u64 incarnation;
	int outstanding;
	__u64 reaped;			/* completions this incarnation */
	__u64 last_progress;
	int nfree;
	__u16 next_cid;
	/* a bogus doorbell in progress, and the last one */
	int bogus_kind;
	__u32 bogus_value;
	bool bogus_expect;		/* an error record must follow */
	__u64 bogus_deadline;
	int last_bogus_kind;
	__u32 last_bogus_value;
	__u64 last_bogus_ns;
	__u16 pins[SQ_MAX];
	__u16 free_recs[SQ_MAX];
	struct cmd recs[SQ_MAX];
	__u16 rec_of_cid[65536];	/* record index + 1, 0: none */
	__u8 cid_state[65536];
};

/*
 * What the TOCTOU thread may rewrite: per SQ slot a mask of the bytes of
 * the SQE in it and the record of the command that owns them, and the
 * targetable list pages of commands in flight. A slot changes hands when
 * the guest reuses it (the device fetched the old command, which may still
 * be in flight) and is cleared when its owner completes; both under the
 * lock, so the new SQE in a slot is never rewritten for the old one.
 */
struct toctou {
	__u64 mask[NQ + 1][SQ_MAX];
	__u16 owner[NQ + 1][SQ_MAX];		/* record index */
	__u8 rewritten[NQ + 1][SQ_MAX];		/* by record index */
	pthread_spinlock_t qlock[NQ + 1];
	__u8 page_live[HTGT_PAGES];
	pthread_spinlock_t plock;
	int stop;
	unsigned long mutations;
};

enum { G_KNOWN, G_ZERO, G_MAYBE_ZERO, G_UNKNOWN };

struct gstate {
	__u32 gen;
	__u8 kind;
};

struct region {
	void *addr;
	__u64 gpa, size;
	int memfd;
	bool present;		/* in the memory table */
	bool canary;		/* the device must never write it */
};

struct eng {
	bool state_mode;
	bool fast;		/* fast mode: no golden commands, no TOCTOU */
	bool small;		/* small transfers and fuzz area (fast, state) */
	bool nodata;		/* the backend keeps no data: no golden area */
	struct nullb_dev nb;	/* fast mode's own null_blk, if any */
	bool broken;		/* cannot go on: stop the loop */
	struct guest g;
	struct guest_backend be;
	struct rng rng;
	unsigned int mdts, dstrd, lba_shift, lbs;
	__u32 mdts_bytes, mdts_lbas;
	__u64 nsze, fuzz_lbas, gold_first, gold_n;
	int scratch_pages;
	bool shadow;		/* shadow doorbells (state: switches) */
	int hostile_pct;
	struct pool pools[NPOOLS];
	struct fq *q[NQ + 1];
	struct gstate *gst;
	__u8 *gbusy;
	__u32 gen;
	int gslot_free[GSLOTS], ngslot_free;
	struct region r2, r3;
	__u32 r2_epoch;
	unsigned int r2_old;	/* commands in flight into a removed r2 */
	__u64 cpus[VHOST_NVME_MAX_CPUS / 64];
	struct toctou tt;
	pthread_t tt_thread;
	bool tt_running;
	__u64 next_tick, next_check, next_stats, next_action, next_age;
	__u8 *tmp;		/* 2 MiB */
	__u8 lbuf[4096];	/* one logical block */
	/* for the report */
	__u64 kinds[K_HOSTILE + 1], must_fail, forgotten, recreated;
	__u64 bogus[NBOGUS], bogus_reported, gold_verified, act[16];
	__u64 act_ns[16];	/* time spent in each action */
};

static __u64 pg_gpa(struct eng *e, int pg)
{
	return e->g.mem_gpa + ((__u64)pg << GUEST_PAGE_SHIFT);
}

static __u8 *pg_ptr(struct eng *e, int pg)
{
	return (__u8 *)e->g.mem + ((size_t)pg << GUEST_PAGE_SHIFT);
}

static bool gpa_in_mem(struct eng *e, __u64 gpa)
{
	return gpa >= e->g.mem_gpa && gpa - e->g.mem_gpa < e->g.mem_size;
}

static bool lba_ok(struct eng *e, __u64 slba, __u64 nlb)
{
	return slba < e->nsze && nlb <= e->nsze - slba;
}

static int pool_init(struct pool *p, int first, int n)
{
	int i;

	p->stack = calloc(n, sizeof(*p->stack));
	if (!p->stack)
		return -ENOMEM;
	p->top = 0;
	for (i = n - 1; i >= 0; i--)
		p->stack[p->top++] = first + i;
	return 0;
}

/* A list page for @c from @pool, remembered in @c to be given back. */
static int list_get(struct eng *e, struct cmd *c, int pool)
{
	struct pool *p = &e->pools[pool];
	int pg;

	if (c->nlist >= CMD_MAX_LISTS || !p->top)
		return -1;
	pg = p->stack[--p->top];
	c->pool = pool;
	c->list[c->nlist++] = pg;
	return pg;
}

/* ---- the golden area: data only well-formed commands write --------- */

#define GOLD_MAGIC	0x21214e45444c4f47ull	/* "GOLDEN!!" */

/* What logical block @lba holds at generation @gen. */
static void gold_fill(struct eng *e, __u64 lba, __u32 gen, __u8 *out)
{
	__u64 x = opt_seed * 0x9e3779b97f4a7c15ull ^
		  lba * 0xc2b2ae3d27d4eb4full ^ (__u64)gen << 20 ^ 1;
	__u64 w[2] = { GOLD_MAGIC ^ lba, (__u64)gen << 32 | (__u32)opt_seed };
	unsigned int i;

	memcpy(out, w, sizeof(w));
	for (i = 16; i < e->lbs; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(out + i, &x, 8);
	}
}

static const char *gkind_name(int k)
{
	static const char *const n[] = { "gen", "zero", "zero-or-gen",
					 "unknown" };

	return n[k];
}

/*
 * Is @got what golden block @rel (relative to gold_first) holds? If not,
 * say what it looks like: a block from elsewhere or from another time
 * names itself in its first 16 bytes.
 */
static bool gold_check(struct eng *e, __u32 rel, const __u8 *got, char *why,
		       size_t len)
{
	struct gstate *s = &e->gst[rel];
	__u8 *want = e->lbuf;
	__u64 w[2];
	long at;

	if (s->kind == G_UNKNOWN)
		return true;
	if ((s->kind == G_ZERO || s->kind == G_MAYBE_ZERO) &&
	    all_zero(got, e->lbs))
		return true;
	if (s->kind == G_ZERO) {
		at = first_not(got, 0, e->lbs);
	} else {
		gold_fill(e, e->gold_first + rel, s->gen, want);
		if (!memcmp(want, got, e->lbs))
			return true;
		for (at = 0; at < e->lbs && want[at] == got[at]; at++)
			;
	}
	memcpy(w, got, sizeof(w));
	snprintf(why, len,
		 "lba %llu should hold %s %u, byte %ld differs; it holds lba %llu gen %u%s",
		 (unsigned long long)(e->gold_first + rel),
		 gkind_name(s->kind), s->gen, at,
		 (unsigned long long)(w[0] ^ GOLD_MAGIC), (__u32)(w[1] >> 32),
		 (w[1] & 0xffffffff) == (__u32)opt_seed ? "" :
		 " (if that is a golden header at all)");
	return false;
}

static void gold_set(struct eng *e, __u32 rel, __u32 n, int kind,
		     __u32 gen)
{
	__u32 i;

	for (i = 0; i < n; i++) {
		e->gst[rel + i].kind = kind;
		e->gst[rel + i].gen = gen;
	}
}

/* Deallocated: reads back zeroes where the backend frees, else as before. */
static void gold_dealloc(struct eng *e, __u32 rel, __u32 n)
{
	__u32 i;

	for (i = 0; i < n; i++)
		if (e->gst[rel + i].kind == G_KNOWN)
			e->gst[rel + i].kind = G_MAYBE_ZERO;
}

static bool gold_lock(struct eng *e, struct rng *r, __u32 n, __u32 *rel)
{
	int tries;
	__u32 i, at;

	for (tries = 0; tries < 4; tries++) {
		at = rnd_below(r, e->gold_n - n + 1);
		for (i = 0; i < n && !e->gbusy[at + i]; i++)
			;
		if (i == n) {
			memset(e->gbusy + at, 1, n);
			*rel = at;
			return true;
		}
	}
	return false;
}

/* Host address of byte @pos of golden command @c's (scattered) buffer. */
static __u8 *gbuf_at(struct eng *e, const struct cmd *c, __u32 pos)
{
	int pg = PG_GSLOT(c->gslot) + c->gperm[pos >> GUEST_PAGE_SHIFT];

	return pg_ptr(e, pg) + (pos & (GUEST_PAGE_SIZE - 1));
}

static void gbuf_copy(struct eng *e, const struct cmd *c, __u8 *host,
		      bool to_guest)
{
	__u32 len = c->gnlb * e->lbs, done = 0, pos = c->goff;

	while (done < len) {
		__u32 in_page = GUEST_PAGE_SIZE - (pos & (GUEST_PAGE_SIZE - 1));
		__u32 chunk = MIN(in_page, len - done);
		__u8 *p = gbuf_at(e, c, pos);

		if (to_guest)
			memcpy(p, host + done, chunk);
		else
			memcpy(host + done, p, chunk);
		done += chunk;
		pos += chunk;
	}
}

/* ---- PRPs of well-formed commands ---------------------------------- */

/*
 * PRP1 at @off into the first of @pg[0..np), PRP2 the second page or a
 * list from @pool starting @loff bytes into its page; a list page whose
 * last slot is reached with more than one entry to go chains to the next.
 */
static int prp_build(struct eng *e, struct cmd *c, int pool, const __u64 *pg,
		     unsigned int np, __u32 off, __u32 loff,
		     struct nvme_sqe *s)
{
	unsigned int i, slot;
	__le64 *ent;
	int lp;

	s->prp1 = htole64(pg[0] + off);
	s->prp2 = 0;
	if (np == 1)
		return 0;
	if (np == 2) {
		s->prp2 = htole64(pg[1]);
		return 0;
	}
	lp = list_get(e, c, pool);
	if (lp < 0)
		return -ENOMEM;
	s->prp2 = htole64(pg_gpa(e, lp) + loff);
	ent = (__le64 *)pg_ptr(e, lp);
	slot = loff / 8;
	for (i = 1; i < np; i++) {
		if (slot == 511 && i < np - 1) {
			lp = list_get(e, c, pool);
			if (lp < 0)
				return -ENOMEM;
			ent[511] = htole64(pg_gpa(e, lp));
			ent = (__le64 *)pg_ptr(e, lp);
			slot = 0;
		}
		ent[slot++] = htole64(pg[i]);
	}
	return 0;
}

/* Mostly small, sometimes all of @max. */
static __u32 pick_nlb(struct rng *r, __u32 max)
{
	switch (rnd_below(r, 5)) {
	case 0:
		return max;
	case 1:
		return 1 + rnd_below(r, max);
	default:
		return 1 + rnd_below(r, MIN(max, 8u));
	}
}

/* @np data pages: a run of contiguous ones, or scattered anywhere. */
static void pick_pages(struct rng *r, __u64 base, __u32 npages, __u64 *pg,
		       unsigned int np)
{
	unsigned int i;
	__u32 at;

	if (chance(r, 40) && np <= npages) {
		at = rnd_below(r, npages - np + 1);
		for (i = 0; i < np; i++)
			pg[i] = base + ((__u64)(at + i) << GUEST_PAGE_SHIFT);
		return;
	}
	for (i = 0; i < np; i++)
		pg[i] = base +
			((__u64)rnd_below(r, npages) << GUEST_PAGE_SHIFT);
}

/* ---- well-formed commands ------------------------------------------ */

static int gen_flush(struct eng *e, struct fq *q, struct cmd *c,
		     struct nvme_sqe *s)
{
	/* FFFFFFFFh: every namespace, also valid. */
	nvme_sqe_flush(s, chance(&q->rng, 70) ? 1 : NVME_NSID_ALL);
	c->kind = K_FLUSH;
	c->what = "flush";
	return 0;
}

/* A read or write in the fuzz area, data in scratch or in region 2. */
static int gen_fuzz_rw(struct eng *e, struct fq *q, struct cmd *c,
		       struct nvme_sqe *s, bool write, bool r2)
{
	struct rng *r = &q->rng;
	__u32 nlb = pick_nlb(r, MIN(e->mdts_lbas, (__u32)e->fuzz_lbas));
	__u64 slba = rnd_below(r, e->fuzz_lbas - nlb + 1);
	__u32 off = chance(r, 60) ? 0 : 4 * rnd_below(r, 1024);
	__u32 loff = chance(r, 70) ? 0 : 8 * rnd_below(r, 512);
	unsigned int np = DIV_UP(off + (nlb << e->lba_shift), GUEST_PAGE_SIZE);
	__u64 pg[GUEST_BUF_MAX_PAGES];

	if (r2)
		pick_pages(r, e->r2.gpa, e->r2.size >> GUEST_PAGE_SHIFT, pg,
			   np);
	else
		pick_pages(r, pg_gpa(e, PG_SCRATCH), e->scratch_pages, pg, np);
	nvme_sqe_rw(s, write ? NVME_CMD_WRITE : NVME_CMD_READ, 1, slba, nlb,
		    write && chance(r, 15) ? NVME_RW_FUA : 0);
	c->kind = K_FUZZ_RW;
	c->what = r2 ? (write ? "write from region 2" : "read into region 2") :
		       (write ? "write" : "read");
	if (r2) {
		c->flags |= CF_R2;
		c->r2_epoch = e->r2_epoch;
	}
	return prp_build(e, c, POOL_PLAUS, pg, np, off, loff, s);
}

static int gen_fuzz_wz(struct eng *e, struct fq *q, struct cmd *c,
		       struct nvme_sqe *s)
{
	struct rng *r = &q->rng;
	/* Now and then the whole area; not in state mode (short drains). */
	__u32 max = chance(r, 10) && !e->state_mode ?
		    MIN(65536, (__u32)e->fuzz_lbas) : 64;
	__u32 nlb = 1 + rnd_below(r, max);
	__u64 slba = rnd_below(r, e->fuzz_lbas - nlb + 1);

	nvme_sqe_rw(s, NVME_CMD_WRITE_ZEROES, 1, slba, nlb,
		    (chance(r, 30) ? NVME_WZ_DEAC : 0) |
		    (chance(r, 10) ? NVME_RW_FUA : 0));
	c->kind = K_FUZZ_WZ;
	c->what = "write zeroes";
	return 0;
}

/* A DSM range list of @nr at @off of page @a, continuing into page @b. */
static void put_range(__u8 *a, __u8 *b, __u32 off,
		      const struct nvme_dsm_range *d)
{
	const __u8 *src = (const __u8 *)d;
	unsigned int i;

	for (i = 0; i < sizeof(*d); i++, off++) {
		if (off < GUEST_PAGE_SIZE)
			a[off] = src[i];
		else if (b)
			b[off - GUEST_PAGE_SIZE] = src[i];
	}
}

static int gen_fuzz_dsm(struct eng *e, struct fq *q, struct cmd *c,
			struct nvme_sqe *s)
{
	struct rng *r = &q->rng;
	__u32 nr = chance(r, 20) ? 1 + rnd_below(r, 256) : 1 + rnd_below(r, 4);
	__u32 bytes = nr * 16, off, i;
	int a, b = -1;

	a = list_get(e, c, POOL_PLAUS);
	if (a < 0)
		return -ENOMEM;
	if (chance(r, 20) && nr > 1) {
		/* The list crosses into PRP2's page. */
		off = GUEST_PAGE_SIZE - 16 * (1 + rnd_below(r, nr - 1));
		b = list_get(e, c, POOL_PLAUS);
		if (b < 0)
			return -ENOMEM;
	} else {
		off = 16 * rnd_below(r, (GUEST_PAGE_SIZE - bytes) / 16 + 1);
	}
	for (i = 0; i < nr; i++) {
		__u32 nlb = 1 + rnd_below(r, 256);
		struct nvme_dsm_range d = {
			.cattr = htole32(rnd(r)),
			.nlb = htole32(nlb),
			.slba = htole64(rnd_below(r, e->fuzz_lbas - nlb + 1)),
		};

		put_range(pg_ptr(e, a), b >= 0 ? pg_ptr(e, b) : NULL,
			  off + i * 16, &d);
	}
	nvme_sqe_dsm(s, 1, nr, chance(r, 70) ?
		     NVME_DSM_AD | (rnd(r) & 3) : rnd(r) & 3);
	nvme_sqe_set_prp(s, pg_gpa(e, a) + off, b >= 0 ? pg_gpa(e, b) : 0);
	c->kind = K_FUZZ_DSM;
	c->what = "dataset management";
	return 0;
}

/*
 * A golden write or read: 1..64 KiB of golden blocks, locked until it
 * completes, through the pages of one golden slot in random order at a
 * random dword offset. A write's blocks are the next generation; a read's
 * pages are filled first so that a byte written outside the data shows.
 */
static int gen_gold_rw(struct eng *e, struct fq *q, struct cmd *c,
		       struct nvme_sqe *s, bool write)
{
	struct rng *r = &q->rng;
	__u32 max = MIN(GOLD_MAX_BYTES, e->mdts_bytes) >> e->lba_shift;
	__u32 nlb = pick_nlb(r, max), rel, i, len = nlb << e->lba_shift;
	__u64 pg[GSLOT_PAGES];
	__u8 perm[GSLOT_PAGES];
	unsigned int np;

	if (!e->ngslot_free || !gold_lock(e, r, nlb, &rel))
		return -EBUSY;
	c->gslot = e->gslot_free[--e->ngslot_free];
	c->glba = rel;
	c->gnlb = nlb;
	c->goff = chance(r, 50) ? 0 : 4 * rnd_below(r, 1024);
	np = DIV_UP(c->goff + len, GUEST_PAGE_SIZE);
	c->gpages = np;
	for (i = 0; i < GSLOT_PAGES; i++)
		perm[i] = i;
	for (i = 0; i < np; i++) {
		__u32 j = i + rnd_below(r, GSLOT_PAGES - i);
		__u8 t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
		c->gperm[i] = perm[i];
		pg[i] = pg_gpa(e, PG_GSLOT(c->gslot) + perm[i]);
	}
	if (write) {
		c->gen = ++e->gen;
		for (i = 0; i < nlb; i++)
			gold_fill(e, e->gold_first + rel + i, c->gen,
				  e->tmp + i * e->lbs);
		gbuf_copy(e, c, e->tmp, true);
	} else {
		for (i = 0; i < np; i++)
			memset(pg_ptr(e, PG_GSLOT(c->gslot) + perm[i]), FILL,
			       GUEST_PAGE_SIZE);
	}
	nvme_sqe_rw(s, write ? NVME_CMD_WRITE : NVME_CMD_READ, 1,
		    e->gold_first + rel, nlb,
		    write && chance(r, 20) ? NVME_RW_FUA : 0);
	c->kind = write ? K_GOLD_W : K_GOLD_R;
	c->what = write ? "golden write" : "golden read";
	return prp_build(e, c, POOL_PLAUS, pg, np, c->goff,
			 chance(r, 70) ? 0 : 8 * rnd_below(r, 512), s);
}

static int gen_gold_wz(struct eng *e, struct fq *q, struct cmd *c,
		       struct nvme_sqe *s)
{
	struct rng *r = &q->rng;
	__u32 nlb = 1 + rnd_below(r, 256), rel;

	if (!gold_lock(e, r, nlb, &rel))
		return -EBUSY;
	c->glba = rel;
	c->gnlb = nlb;
	nvme_sqe_write_zeroes(s, 1, e->gold_first + rel, nlb, chance(r, 50));
	c->kind = K_GOLD_WZ;
	c->what = "golden write zeroes";
	return 0;
}

/* 1..4 ranges within one locked span; the list stays for the completion. */
static int gen_gold_dsm(struct eng *e, struct fq *q, struct cmd *c,
			struct nvme_sqe *s)
{
	struct rng *r = &q->rng;
	__u32 span = 1 + rnd_below(r, 256), nr = 1 + rnd_below(r, 4), rel, i;
	struct nvme_dsm_range *d;
	int a;

	if (!gold_lock(e, r, span, &rel))
		return -EBUSY;
	c->glba = rel;
	c->gnlb = span;
	a = list_get(e, c, POOL_PLAUS);
	if (a < 0)
		return -ENOMEM;
	d = (struct nvme_dsm_range *)pg_ptr(e, a);
	for (i = 0; i < nr; i++) {
		__u32 at = rnd_below(r, span);

		d[i].cattr = htole32(rnd(r));
		d[i].nlb = htole32(1 + rnd_below(r, span - at));
		d[i].slba = htole64(e->gold_first + rel + at);
	}
	nvme_sqe_dsm(s, 1, nr, chance(r, 80) ? NVME_DSM_AD : NVME_DSM_IDR);
	nvme_sqe_set_prp(s, pg_gpa(e, a), 0);
	c->kind = K_GOLD_DSM;
	c->what = "golden dataset management";
	return 0;
}

static void cmd_release(struct eng *e, struct fq *q, struct cmd *c);

static void gen_plausible(struct eng *e, struct fq *q, struct cmd *c,
			  struct nvme_sqe *s)
{
	struct rng *r = &q->rng;
	unsigned int p = rnd_below(r, 100);
	int rc;

	/* Fast mode: the kinds that need no golden bookkeeping. */
	if (e->fast)
		p = 36 + rnd_below(r, 64);
	if (p < 16)
		rc = gen_gold_rw(e, q, c, s, true);
	else if (p < 32)
		rc = gen_gold_rw(e, q, c, s, false);
	else if (p < 34)
		rc = gen_gold_wz(e, q, c, s);
	else if (p < 36)
		rc = gen_gold_dsm(e, q, c, s);
	else if (p < 40)
		rc = gen_flush(e, q, c, s);
	else if (p < 46)
		rc = gen_fuzz_dsm(e, q, c, s);
	else if (p < 52)
		rc = gen_fuzz_wz(e, q, c, s);
	else
		rc = gen_fuzz_rw(e, q, c, s, chance(r, 50),
				 e->r2.present && chance(r, 15));
	if (rc) {
		/* Out of slots, pages or free golden blocks: a flush. */
		cmd_release(e, q, c);
		gen_flush(e, q, c, s);
		c->what = "flush (nothing else fitted)";
	}
	c->flags |= CF_WELL_FORMED;
}

/* ---- hostile commands ---------------------------------------------- */

/* An address no memory region covers. */
static __u64 oom_gpa(struct eng *e, struct rng *r)
{
	__u64 end = guest_mem_end(&e->g);

	switch (rnd_below(r, 7)) {
	case 0:
		return 0;
	case 1:
		return e->g.mem_gpa - GUEST_PAGE_SIZE;
	case 2:
		return end;
	case 3:
		return end + ((__u64)rnd_below(r, 1024) << GUEST_PAGE_SHIFT);
	case 4:
		return ~0ull << GUEST_PAGE_SHIFT;	/* 2^64 - 4096 */
	case 5:
		return 1ull << 63;
	default:
		return (rnd(r) | 1ull << 44) & ~(__u64)(GUEST_PAGE_SIZE - 1);
	}
}

/* A page a read may write: scratch, or the targetable list pool. */
static __u64 safe_page(struct eng *e, struct rng *r)
{
	if (chance(r, 85))
		return pg_gpa(e, PG_SCRATCH + rnd_below(r, e->scratch_pages));
	return pg_gpa(e, PG_HTGT + rnd_below(r, HTGT_PAGES));
}

/* Any page of guest memory, with a taste for the ones that matter. */
static __u64 any_page(struct eng *e, struct rng *r)
{
	switch (rnd_below(r, 8)) {
	case 0:
		return pg_gpa(e, PG_CQ(1 + rnd_below(r, NQ)));
	case 1:
		return pg_gpa(e, PG_SQ(1 + rnd_below(r, NQ)) + rnd_below(r, 4));
	case 2:
		return pg_gpa(e, PG_GOLD + rnd_below(r, PG_PLAUS - PG_GOLD));
	case 3:
		return pg_gpa(e, rnd_below(r, 2));	/* doorbell pages */
	case 4:
		return pg_gpa(e, rnd_below(r, MEM_PAGES));
	default:
		return safe_page(e, r);
	}
}

/* An offset into a page: odd, dword, sector, qword or anything. */
static __u32 hostile_off(struct rng *r)
{
	switch (rnd_below(r, 8)) {
	case 0:
		return 0;
	case 1:
		return 1 + rnd_below(r, 3);
	case 2:
		return 4 * rnd_below(r, 1024);
	case 3:
		return GUEST_PAGE_SIZE - 4;
	case 4:
		return 512 * rnd_below(r, 8);
	case 5:
		return rnd_below(r, GUEST_PAGE_SIZE);
	default:
		return 8 * rnd_below(r, 512);
	}
}

static __u8 h_flags(struct rng *r)
{
	switch (rnd_below(r, 4)) {
	case 0:
		return NVME_SQE_FUSE(1 + rnd_below(r, 3));
	case 1:
		return NVME_SQE_PSDT(1 + rnd_below(r, 3));
	case 2:
		return rnd(r);
	default:
		return 0;
	}
}

static __u32 h_nsid(struct rng *r)
{
	static const __u32 v[] = { 0, 2, 16, 17, NVME_NSID_ALL, 0x80000000 };

	if (chance(r, 85))
		return v[rnd_below(r, ARRAY_SIZE(v))];
	return rnd(r);
}

/*
 * A hostile command's LBA range: inside the fuzz area, or one a correct
 * device refuses - at or past the end, straddling it (from inside the
 * golden area), wrapping around 2^64, or wrapping into the golden area
 * once shifted to bytes. Never one inside the golden area: only
 * well-formed commands write there, or the data checks would mean nothing.
 */
static void hostile_lba(struct eng *e, struct rng *r, __u64 *slba,
			__u32 *nlb)
{
	__u32 n, k;

	switch (rnd_below(r, 10)) {
	case 0:		/* longer than MDTS allows */
		n = chance(r, 50) ? 65536 :
		    e->mdts_lbas + 1 + rnd_below(r, e->mdts_lbas);
		break;
	case 1:		/* at the end */
		*slba = e->nsze;
		*nlb = 1 + rnd_below(r, 8);
		return;
	case 2:
		*slba = e->nsze + 1 + rnd_below(r, 1u << 20);
		*nlb = 1 + rnd_below(r, 256);
		return;
	case 3:		/* straddles the end */
		n = 2 + rnd_below(r, 255);
		*slba = e->nsze - 1 - rnd_below(r, n - 1);
		*nlb = n;
		return;
	case 4:		/* slba + nlb wraps around 2^64 */
		n = 2 + rnd_below(r, 255);
		k = 1 + rnd_below(r, n - 1);
		*slba = 0 - (__u64)k;
		*nlb = n;
		return;
	case 5:		/* slba << lba_shift wraps into golden */
		*slba = (1ull << (64 - e->lba_shift)) + e->gold_first +
			rnd_below(r, e->gold_n);
		*nlb = 1 + rnd_below(r, 8);
		return;
	case 6:
		*slba = 1ull << 63;
		*nlb = 1 + rnd_below(r, 65536);
		return;
	case 7:
		*slba = rnd(r) | 1ull << 62;
		*nlb = 1 + rnd_below(r, 65536);
		return;
	default:
		n = 1 + rnd_below(r, MIN(e->mdts_lbas, 64u));
		break;
	}
	*slba = n <= e->fuzz_lbas ? rnd_below(r, e->fuzz_lbas - n + 1) :
				    e->nsze;
	*nlb = n;
}

/* cdw10-12 as a golden-safe LBA range, whatever the opcode makes of them. */
static void h_lba_dwords(struct eng *e, struct rng *r, struct nvme_sqe *s)
{
	__u64 slba;
	__u32 nlb;

	hostile_lba(e, r, &slba, &nlb);
	s->cdw10 = htole32((__u32)slba);
	s->cdw11 = htole32(slba >> 32);
	s->cdw12 = htole32(((nlb - 1) & 0xffff) | (rnd(r) & 0xffff0000));
}

static void h_garbage(struct rng *r, struct nvme_sqe *s)
{
	if (chance(r, 10)) {
		s->cdw2 = htole32(rnd(r));
		s->cdw3 = htole32(rnd(r));
	}
	if (chance(r, 10))
		s->mptr = htole64(rnd(r));
	if (chance(r, 10))
		s->cdw13 = htole32(rnd(r));
	if (chance(r, 10)) {
		s->cdw14 = htole32(rnd(r));
		s->cdw15 = htole32(rnd(r));
	}
}

/* Read/write fields, each hostile now and then. Returns the length. */
static __u32 h_rw_fields(struct eng *e, struct rng *r, struct nvme_sqe *s,
			 __u8 opcode)
{
	__u64 slba;
	__u32 nlb;

	if (chance(r, 40)) {
		hostile_lba(e, r, &slba, &nlb);
	} else {
		nlb = pick_nlb(r, MIN(e->mdts_lbas, (__u32)e->fuzz_lbas));
		slba = rnd_below(r, e->fuzz_lbas - nlb + 1);
	}
	nvme_sqe_rw(s, opcode, chance(r, 80) ? 1 : h_nsid(r), slba, nlb, 0);
	if (chance(r, 20))
		s->flags = h_flags(r);
	if (chance(r, 20))	/* FUA, LR, PRINFO, DTYPE... */
		s->cdw12 |= htole32(rnd(r) & 0xffff0000);
	h_garbage(r, s);
	return nlb << e->lba_shift;
}

static void fill_safe(struct eng *e, struct rng *r, __le64 *ent)
{
	int i;

	for (i = 0; i < 512; i++)
		ent[i] = htole64(safe_page(e, r));
}

/*
 * A hostile read's PRP list, for @left bytes after PRP1's page. Every
 * entry the device may use as a data pointer is a safe page (or garbage
 * that is not in memory); every slot not needed is a safe page too. The
 * list may chain to itself, to its own last slot (a walk that never moves
 * on), deep through unaligned pointers, or out of memory.
 */
static int h_read_list(struct eng *e, struct cmd *c, struct nvme_sqe *s,
		       struct rng *r, __u32 left)
{
	__u32 need = DIV_UP(left, GUEST_PAGE_SIZE), i = 0, slot, loff;
	unsigned int chain = rnd_below(r, 8);
	__le64 *ent;
	__u64 prp2, v;
	int lp, np;

	lp = list_get(e, c, POOL_HPROT);
	if (lp < 0)
		return -ENOMEM;
	ent = (__le64 *)pg_ptr(e, lp);
	fill_safe(e, r, ent);
	switch (rnd_below(r, 5)) {
	case 0:
		loff = GUEST_PAGE_SIZE - 8;
		break;
	case 1:
		loff = GUEST_PAGE_SIZE - 16;
		break;
	case 2:
		loff = 8 * rnd_below(r, 512);
		break;
	default:
		loff = 0;
		break;
	}
	prp2 = pg_gpa(e, lp) + loff;
	if (chance(r, 6))
		prp2 += 1 + rnd_below(r, 7);
	s->prp2 = htole64(prp2);
	slot = loff / 8;
	while (i < need) {
		if (slot == 511 && i < need - 1) {
			switch (chain) {
			case 0:		/* back to its own start */
				ent[511] = htole64(pg_gpa(e, lp));
				slot = 0;
				continue;
			case 1:		/* to its own last slot */
				ent[511] = htole64(pg_gpa(e, lp) +
						   GUEST_PAGE_SIZE - 8);
				return 0;
			case 2:
				ent[511] = htole64(oom_gpa(e, r));
				return 0;
			case 3:		/* deep, one slot per page */
				while ((np = list_get(e, c, POOL_HPROT)) >= 0) {
					ent[511] = htole64(pg_gpa(e, np) +
							   GUEST_PAGE_SIZE - 8);
					ent = (__le64 *)pg_ptr(e, np);
					fill_safe(e, r, ent);
					lp = np;
				}
				ent[511] = htole64(pg_gpa(e, lp) +
						   GUEST_PAGE_SIZE - 8);
				return 0;
			default:
				np = list_get(e, c, POOL_HPROT);
				if (np < 0) {
					ent[511] = htole64(oom_gpa(e, r));
					return 0;
				}
				ent[511] = htole64(pg_gpa(e, np));
				ent = (__le64 *)pg_ptr(e, np);
				fill_safe(e, r, ent);
				lp = np;
				slot = 0;
				continue;
			}
		}
		v = safe_page(e, r);
		if (chance(r, 2)) {
			switch (rnd_below(r, 4)) {
			case 0:
				v += 512;
				break;
			case 1:
				v = oom_gpa(e, r);
				break;
			case 2:
				v = 0;
				break;
			default:
				v += 8;
				break;
			}
		}
		ent[slot++] = htole64(v);
		i++;
	}
	return 0;
}

/*
 * Can a read of @len bytes at SQ slot @slot land in its own slot and the
 * ones before it in the same ring page? They are fetched before it runs,
 * and are pinned - not reused - until it completes; the rest of the ring
 * must stay out of its reach.
 */
static bool sq_target_ok(struct fq *q, __u16 slot, __u32 len)
{
	__u32 n = len / 64;

	return len <= GUEST_PAGE_SIZE && n <= q->sq_entries - 1 &&
	       slot % 64 >= n - 1;
}

static int gen_h_read(struct eng *e, struct fq *q, struct cmd *c,
		      struct nvme_sqe *s, __u16 slot)
{
	struct rng *r = &q->rng;
	__u32 len, eff, rem;
	__u64 prp1, prp2;
	unsigned int mode;

	c->what = "hostile read";
	if (chance(r, 10) && sq_target_ok(q, slot, e->lbs)) {
		__u16 first = slot - (e->lbs / 64 - 1), i;

		nvme_sqe_rw(s, NVME_CMD_READ, chance(r, 80) ? 1 : h_nsid(r),
			    rnd_below(r, e->fuzz_lbas), 1, 0);
		nvme_sqe_set_prp(s, q->sq->gpa + first * 64ull,
				 safe_page(e, r));
		c->pin_first = first;
		c->pin_n = slot - first + 1;
		for (i = first; i <= slot; i++)
			q->pins[i]++;
		c->what = "hostile read into its own SQ slots";
		return 0;
	}
	len = h_rw_fields(e, r, s, NVME_CMD_READ);
	/* Past MDTS it must fail before any PRP is looked at. */
	eff = MIN(len, e->mdts_bytes);
	mode = rnd_below(r, 12);
	if (mode == 0)
		prp1 = oom_gpa(e, r) + (chance(r, 50) ? 0 : hostile_off(r));
	else if (mode == 1)	/* the last page: the rest is outside */
		prp1 = pg_gpa(e, MEM_PAGES - 1) + hostile_off(r);
	else
		prp1 = safe_page(e, r) + (chance(r, 50) ? 0 : hostile_off(r));
	s->prp1 = htole64(prp1);
	rem = GUEST_PAGE_SIZE - (prp1 & (GUEST_PAGE_SIZE - 1));
	if (eff <= rem) {
		/* PRP2 unused: garbage, but garbage a read could not abuse. */
		s->prp2 = htole64(chance(r, 50) ? 0 :
				  safe_page(e, r) + hostile_off(r));
		return 0;
	}
	if (mode == 1) {
		s->prp2 = htole64(guest_mem_end(&e->g));
		return 0;
	}
	if (eff - rem <= GUEST_PAGE_SIZE) {
		switch (rnd_below(r, 6)) {
		case 0:
			prp2 = safe_page(e, r) + 8 * (1 + rnd_below(r, 511));
			break;
		case 1:
			prp2 = oom_gpa(e, r);
			break;
		case 2:
			prp2 = safe_page(e, r) + 1 + rnd_below(r, 3);
			break;
		default:
			prp2 = safe_page(e, r);
			break;
		}
		s->prp2 = htole64(prp2);
		return 0;
	}
	return h_read_list(e, c, s, r, eff - rem);
}

/* A hostile write's list: entries and chains may point anywhere. */
static int h_write_list(struct eng *e, struct fq *q, struct cmd *c,
			struct nvme_sqe *s, struct rng *r, __u32 left)
{
	__u32 need = DIV_UP(left, GUEST_PAGE_SIZE), i = 0, slot;
	__le64 *ent;
	__u64 v;
	int lp, j;

	lp = list_get(e, c, POOL_HTGT);
	if (lp < 0)
		return -ENOMEM;
	ent = (__le64 *)pg_ptr(e, lp);
	for (j = 0; j < 512; j++)
		ent[j] = htole64(chance(r, 90) ? any_page(e, r) : rnd(r));
	slot = chance(r, 60) ? 0 : rnd_below(r, 512);
	s->prp2 = htole64(pg_gpa(e, lp) + slot * 8 +
			  (chance(r, 5) ? 1 + rnd_below(r, 7) : 0));
	while (i < need) {
		if (slot == 511 && i < need - 1) {
			switch (rnd_below(r, 6)) {
			case 0:		/* SQEs as a list */
				ent[511] = htole64(q->sq->gpa +
					(rnd_below(r, q->sq_entries * 64) &
					 ~(__u32)(GUEST_PAGE_SIZE - 1)));
				return 0;
			case 1:
				ent[511] = htole64(pg_gpa(e, lp));
				slot = 0;
				continue;
			case 2:
				ent[511] = htole64(any_page(e, r) +
						   hostile_off(r));
				return 0;
			default:
				j = list_get(e, c, POOL_HTGT);
				if (j < 0) {
					ent[511] = htole64(oom_gpa(e, r));
					return 0;
				}
				ent[511] = htole64(pg_gpa(e, j));
				lp = j;
				ent = (__le64 *)pg_ptr(e, lp);
				for (j = 0; j < 512; j++)
					ent[j] = htole64(any_page(e, r));
				slot = 0;
				continue;
			}
		}
		v = any_page(e, r);
		if (chance(r, 3))
			v = chance(r, 50) ? v + hostile_off(r) : oom_gpa(e, r);
		ent[slot++] = htole64(v);
		i++;
	}
	return 0;
}

/* Writes only read guest memory: their pointers may go anywhere. */
static int gen_h_write(struct eng *e, struct fq *q, struct cmd *c,
		       struct nvme_sqe *s)
{
	struct rng *r = &q->rng;
	__u32 len = h_rw_fields(e, r, s, NVME_CMD_WRITE);
	__u32 eff = MIN(len, e->mdts_bytes), rem;
	__u64 prp1, prp2;

	c->what = "hostile write";
	switch (rnd_below(r, 8)) {
	case 0:
		prp1 = oom_gpa(e, r);
		break;
	case 1:
		prp1 = pg_gpa(e, MEM_PAGES - 1) + hostile_off(r);
		break;
	default:
		prp1 = any_page(e, r) + (chance(r, 50) ? 0 : hostile_off(r));
		break;
	}
	s->prp1 = htole64(prp1);
	rem = GUEST_PAGE_SIZE - (prp1 & (GUEST_PAGE_SIZE - 1));
	if (eff <= rem) {
		s->prp2 = htole64(chance(r, 50) ? 0 : rnd(r));
		return 0;
	}
	if (eff - rem <= GUEST_PAGE_SIZE) {
		switch (rnd_below(r, 4)) {
		case 0:
			prp2 = any_page(e, r) + hostile_off(r);
			break;
		case 1:
			prp2 = oom_gpa(e, r);
			break;
		default:
			prp2 = any_page(e, r);
			break;
		}
		s->prp2 = htole64(prp2);
		return 0;
	}
	switch (rnd_below(r, 6)) {
	case 0:		/* the list is the SQ ring */
		s->prp2 = htole64(q->sq->gpa +
				  8 * rnd_below(r, q->sq_entries * 8));
		return 0;
	case 1:		/* a CQ ring, golden buffer, doorbell page */
		s->prp2 = htole64(any_page(e, r) + 8 * rnd_below(r, 512));
		return 0;
	case 2:
		s->prp2 = htole64(oom_gpa(e, r));
		return 0;
	default:
		return h_write_list(e, q, c, s, r, eff - rem);
	}
}

static int gen_h_wz(struct eng *e, struct fq *q, struct cmd *c,
		    struct nvme_sqe *s)
{
	struct rng *r = &q->rng;
	__u64 slba;
	__u32 nlb;

	if (chance(r, 60)) {
		hostile_lba(e, r, &slba, &nlb);
	} else {
		nlb = 1 + rnd_below(r, chance(r, 10) ?
				    MIN(65536, (__u32)e->fuzz_lbas) : 256);
		slba = rnd_below(r, e->fuzz_lbas - nlb + 1);
	}
	nvme_sqe_rw(s, NVME_CMD_WRITE_ZEROES, chance(r, 80) ? 1 : h_nsid(r),
		    slba, nlb, rnd(r) & 0xffff0000);
	if (chance(r, 20))
		s->flags = h_flags(r);
	/* Write Zeroes has no data: whatever is in the PRPs. */
	nvme_sqe_set_prp(s, chance(r, 50) ? rnd(r) : any_page(e, r),
			 rnd(r));
	h_garbage(r, s);
	c->what = "hostile write zeroes";
	return 0;
}

/*
 * Garbage DSM ranges, never touching the golden area: in the fuzz area,
 * empty, too long, past the end, wrapping, or wrapping into the golden
 * area once shifted. A range a correct device refuses makes the command
 * fail when it deallocates.
 */
static void garbage_range(struct eng *e, struct rng *r,
			  struct nvme_dsm_range *d)
{
	__u64 slba;
	__u32 nlb;

	switch (rnd_below(r, 8)) {
	case 3:
		nlb = 0;
		slba = rnd_below(r, e->fuzz_lbas);
		break;
	case 4:		/* from the fuzz area past the end */
		slba = rnd_below(r, e->fuzz_lbas);
		nlb = e->nsze - slba + 1 + rnd_below(r, 1000);
		break;
	case 5:
		slba = e->nsze + rnd_below(r, 1000);
		nlb = 1 + rnd_below(r, 0xffffffffu);
		break;
	case 6:
		slba = (1ull << (64 - e->lba_shift)) + e->gold_first +
		       rnd_below(r, e->gold_n);
		nlb = 1 + rnd_below(r, 64);
		break;
	case 7:
		slba = ~0ull - rnd_below(r, 16);
		nlb = 1 + rnd_below(r, 64);
		break;
	default:
		nlb = 1 + rnd_below(r, MIN(2048, (__u32)e->fuzz_lbas));
		slba = rnd_below(r, e->fuzz_lbas - nlb + 1);
		break;
	}
	d->cattr = htole32(rnd(r));
	d->nlb = htole32(nlb);
	d->slba = htole64(slba);
}

static int gen_h_dsm(struct eng *e, struct fq *q, struct cmd *c,
		     struct nvme_sqe *s)
{
	struct rng *r = &q->rng;
	__u32 nr = chance(r, 25) ? 256 : 1 + rnd_below(r, 64), off, i;
	__u32 attr = chance(r, 80) ? NVME_DSM_AD | (rnd(r) & 3) : rnd(r) & 7;
	bool bad = false, cross;
	__u64 prp1, prp2;
	int a, b = -1;

	c->what = "hostile dataset management";
	nvme_sqe_dsm(s, chance(r, 80) ? 1 : h_nsid(r), nr, attr);
	if (chance(r, 10))
		s->cdw10 |= htole32(rnd(r) & 0xffffff00);
	if (chance(r, 5))
		s->cdw11 |= htole32(rnd(r) & ~7u);
	if (chance(r, 10))
		s->flags = h_flags(r);
	h_garbage(r, s);
	switch (rnd_below(r, 5)) {
	case 0:
		off = 1 + rnd_below(r, 3);
		break;
	case 1:
		off = 4 * rnd_below(r, 1024);
		break;
	case 2:
		off = GUEST_PAGE_SIZE - 16 * (1 + rnd_below(r, nr));
		break;
	default:
		off = 0;
		break;
	}
	cross = off + nr * 16 > GUEST_PAGE_SIZE;
	a = list_get(e, c, POOL_HPROT);
	if (a < 0)
		return -ENOMEM;
	if (cross) {
		b = list_get(e, c, POOL_HPROT);
		if (b < 0)
			return -ENOMEM;
	}
	for (i = 0; i < nr; i++) {
		struct nvme_dsm_range d;

		garbage_range(e, r, &d);
		bad |= !lba_ok(e, le64toh(d.slba), le32toh(d.nlb));
		put_range(pg_ptr(e, a), b >= 0 ? pg_ptr(e, b) : NULL,
			  off + i * 16, &d);
	}
	prp1 = chance(r, 4) ? oom_gpa(e, r) : pg_gpa(e, a) + off;
	if (cross) {
		/*
		 * Not an unaligned PRP2: a device wrongly taking it would read
		 * the ranges shifted, and could make golden ones of them.
		 */
		prp2 = chance(r, 15) ? oom_gpa(e, r) : pg_gpa(e, b);
	} else {
		prp2 = chance(r, 50) ? 0 : oom_gpa(e, r);
	}
	nvme_sqe_set_prp(s, prp1, prp2);
	if (bad && attr & NVME_DSM_AD)
		c->flags |= CF_MUST_FAIL;
	return 0;
}

static int gen_h_flush(struct eng *e, struct fq *q, struct cmd *c,
		       struct nvme_sqe *s)
{
	struct rng *r = &q->rng;

	nvme_sqe_flush(s, chance(r, 50) ? (chance(r, 50) ? 1 : NVME_NSID_ALL) :
		       h_nsid(r));
	if (chance(r, 30))
		s->flags = h_flags(r);
	if (chance(r, 50))
		nvme_sqe_set_prp(s, rnd(r), rnd(r));
	if (chance(r, 50))
		h_lba_dwords(e, r, s);
	h_garbage(r, s);
	c->what = "hostile flush";
	return 0;
}

/*
 * An opcode this device has no business with. Its fields are safe as if
 * it were a read or a write of any kind: one that is wrongly accepted
 * shows as a status, not as corrupted checks.
 */
static void gen_h_opcode(struct eng *e, struct fq *q, struct cmd *c,
			 struct nvme_sqe *s)
{
	struct rng *r = &q->rng;
	__u8 op;

	do {
		op = rnd(r);
	} while (op == NVME_CMD_FLUSH || op == NVME_CMD_WRITE ||
		 op == NVME_CMD_READ || op == NVME_CMD_WRITE_ZEROES ||
		 op == NVME_CMD_DSM);
	nvme_sqe_init(s, op, chance(r, 60) ? 1 : h_nsid(r));
	if (chance(r, 50))
		s->flags = rnd(r);
	nvme_sqe_set_prp(s, safe_page(e, r) + hostile_off(r),
			 safe_page(e, r) +
			 (chance(r, 50) ? 0 : hostile_off(r)));
	h_lba_dwords(e, r, s);
	h_garbage(r, s);
	c->what = "unknown opcode";
}

/*
 * Must a correct device fail this SQE, judging by the SQE alone? An
 * opcode this device does not support, a fused command, SGLs for a data
 * transfer, a namespace not attached, an LBA range outside it, more than
 * MDTS, or a PRP entry in the SQE that is misaligned or outside guest
 * memory. (PSDT of a command without data may be ignored.)
 */
static bool must_fail_sqe(struct eng *e, const struct nvme_sqe *s)
{
	__u32 nsid = le32toh(s->nsid), rem, nlb;
	__u64 prp1 = le64toh(s->prp1), prp2 = le64toh(s->prp2), slba, len;

	switch (s->opcode) {
	case NVME_CMD_FLUSH:
	case NVME_CMD_WRITE:
	case NVME_CMD_READ:
	case NVME_CMD_WRITE_ZEROES:
	case NVME_CMD_DSM:
		break;
	default:
		return true;
	}
	if (s->flags & NVME_SQE_FUSE(3))
		return true;
	if (s->opcode == NVME_CMD_FLUSH)
		return nsid != 1 && nsid != NVME_NSID_ALL;
	if (nsid != 1)
		return true;
	if (s->opcode == NVME_CMD_DSM) {
		if (!(le32toh(s->cdw11) & NVME_DSM_AD))
			return false;
		len = ((le32toh(s->cdw10) & 0xff) + 1) * 16;
		if (s->flags & NVME_SQE_PSDT(3))
			return true;
	} else {
		slba = le32toh(s->cdw10) | (__u64)le32toh(s->cdw11) << 32;
		nlb = (le32toh(s->cdw12) & 0xffff) + 1;
		if (!lba_ok(e, slba, nlb))
			return true;
		if (s->opcode == NVME_CMD_WRITE_ZEROES)
			return false;
		len = (__u64)nlb << e->lba_shift;
		if (len > e->mdts_bytes || s->flags & NVME_SQE_PSDT(3))
			return true;
	}
	if (prp1 & 3 || !gpa_in_mem(e, prp1))
		return true;
	rem = GUEST_PAGE_SIZE - (prp1 & (GUEST_PAGE_SIZE - 1));
	if (len <= rem)
		return false;
	if (len - rem <= GUEST_PAGE_SIZE)
		return prp2 & (GUEST_PAGE_SIZE - 1) || !gpa_in_mem(e, prp2);
	return prp2 & 7 || !gpa_in_mem(e, prp2);
}

/* The SQE bytes the TOCTOU thread may rewrite while @s is in flight. */
static __u64 toctou_mask(const struct nvme_sqe *s)
{
	__u64 m = 1ull << 1;	/* flags */
	int b;

	/*
	 * Never the opcode (a write into a read would aim its data at
	 * memory we check), the command id (its completion must match), or
	 * cdw10-12's LBA range (it must stay out of the golden area). A
	 * read's and a DSM's PRPs stay too: they must keep pointing where
	 * the device may write, or at ranges we wrote.
	 */
	for (b = 4; b < 24; b++)
		m |= 1ull << b;
	for (b = 50; b < 64; b++)
		m |= 1ull << b;
	if (s->opcode != NVME_CMD_READ && s->opcode != NVME_CMD_DSM)
		for (b = 24; b < 40; b++)
			m |= 1ull << b;
	return m;
}

static void gen_hostile(struct eng *e, struct fq *q, struct cmd *c,
			struct nvme_sqe *s, __u16 slot)
{
	struct rng *r = &q->rng;
	unsigned int p = rnd_below(r, 100);
	int rc;

	if (p < 26)
		rc = gen_h_read(e, q, c, s, slot);
	else if (p < 52)
		rc = gen_h_write(e, q, c, s);
	else if (p < 62)
		rc = gen_h_wz(e, q, c, s);
	else if (p < 74)
		rc = gen_h_dsm(e, q, c, s);
	else if (p < 80)
		rc = gen_h_flush(e, q, c, s);
	else
		rc = -EAGAIN;	/* the one that needs nothing */
	if (rc) {
		cmd_release(e, q, c);
		gen_h_opcode(e, q, c, s);
	}
	c->kind = K_HOSTILE;
	if (must_fail_sqe(e, s))
		c->flags |= CF_MUST_FAIL;
	if (chance(r, 60))
		c->flags |= CF_TOCTOU;
}

/* ---- commands in flight --------------------------------------------- */

static void cmd_violation(struct eng *e, struct fq *q, const struct cmd *c,
			  const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void cmd_violation(struct eng *e, struct fq *q, const struct cmd *c,
			  const char *fmt, ...)
{
	char msg[512], sqe[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	violation("qid %u cid 0x%04x iter %llu (%s, slot %u): %s; sqe %s",
		  q->qid, c->cid, (unsigned long long)c->iter, c->what,
		  c->slot, msg, hex(&c->sqe, sizeof(c->sqe), sqe, sizeof(sqe)));
}

/* Give back what @c holds: list pages, golden blocks and slot, SQ pins. */
static void cmd_release(struct eng *e, struct fq *q, struct cmd *c)
{
	struct toctou *t = &e->tt;
	unsigned int i;

	for (i = 0; i < c->nlist; i++) {
		if (c->pool == POOL_HTGT && c->flags & CF_TOCTOU) {
			pthread_spin_lock(&t->plock);
			t->page_live[c->list[i] - PG_HTGT] = 0;
			pthread_spin_unlock(&t->plock);
		}
		e->pools[c->pool].stack[e->pools[c->pool].top++] = c->list[i];
	}
	c->nlist = 0;
	if (c->gnlb)
		memset(e->gbusy + c->glba, 0, c->gnlb);
	c->gnlb = 0;
	if (c->gslot >= 0)
		e->gslot_free[e->ngslot_free++] = c->gslot;
	c->gslot = -1;
	for (i = 0; i < c->pin_n; i++)
		q->pins[c->pin_first + i]--;
	c->pin_n = 0;
	c->flags = 0;
}

static void gold_verify(struct eng *e, struct fq *q, struct cmd *c)
{
	__u32 len = c->gnlb << e->lba_shift, i;
	char why[256];

	gbuf_copy(e, c, e->tmp, false);
	for (i = 0; i < c->gnlb; i++) {
		if (!gold_check(e, c->glba + i, e->tmp + i * e->lbs, why,
				sizeof(why))) {
			cmd_violation(e, q, c, "golden read returned wrong data: %s",
				      why);
			break;
		}
	}
	e->gold_verified += c->gnlb;
	/* Its pages were filled: outside the data nothing may change. */
	for (i = 0; i < c->gpages; i++) {
		__u32 base = i * GUEST_PAGE_SIZE;
		__u32 a = c->goff > base ? c->goff - base : 0;
		__u32 b = MIN(c->goff + len - base, GUEST_PAGE_SIZE);
		__u8 *p = pg_ptr(e, PG_GSLOT(c->gslot) + c->gperm[i]);
		long at = first_not(p, FILL, a);

		if (at < 0 && b < GUEST_PAGE_SIZE) {
			at = first_not(p + b, FILL, GUEST_PAGE_SIZE - b);
			if (at >= 0)
				at += b;
		}
		if (at >= 0) {
			cmd_violation(e, q, c,
				      "golden read wrote byte %ld of its page %u (0x%02x), outside its data [%u, %u)",
				      at, i, p[at], a, b);
			break;
		}
	}
}

/*
 * @c completed with @status, or was forgotten (@status < 0): queue
 * deleted or reset before fetching it. A forgotten golden write left its
 * blocks as they were, unless @lossy (the CQ broke, so it may have run
 * without telling).
 */
static void cmd_finish(struct eng *e, struct fq *q, struct cmd *c,
		       int status, bool lossy)
{
	struct toctou *t = &e->tt;
	unsigned int sc = status >= 0 ? nvme_status(status) : 0;
	bool rewritten = false, ok_any;
	struct nvme_dsm_range *d;
	__u32 i, nr;

	if (c->flags & CF_TOCTOU) {
		pthread_spin_lock(&t->qlock[q->qid]);
		if (t->owner[q->qid][c->slot] == c->idx)
			__atomic_store_n(&t->mask[q->qid][c->slot], 0,
					 __ATOMIC_RELAXED);
		rewritten = t->rewritten[q->qid][c->idx];
		pthread_spin_unlock(&t->qlock[q->qid]);
	}
	ok_any = c->flags & CF_R2 && c->r2_epoch != e->r2_epoch;
	if (c->flags & CF_R2 && c->r2_epoch != e->r2_epoch)
		e->r2_old--;
	if (status >= 0) {
		cur.completions++;
		q->reaped++;
		if (sc)
			cur.errors++;
		if (c->flags & CF_WELL_FORMED && sc && !ok_any)
			cmd_violation(e, q, c,
				      "well-formed command completed with status 0x%03x (sct %u sc 0x%02x dnr %u)",
				      sc, nvme_sct(status), nvme_sc(status),
				      nvme_dnr(status));
		if (c->flags & CF_MUST_FAIL && !rewritten && !sc)
			cmd_violation(e, q, c,
				      "invalid command completed with Success");
		switch (c->kind) {
		case K_GOLD_W:
			gold_set(e, c->glba, c->gnlb, sc ? G_UNKNOWN : G_KNOWN,
				 c->gen);
			break;
		case K_GOLD_R:
			if (!sc)
				gold_verify(e, q, c);
			break;
		case K_GOLD_WZ:
			gold_set(e, c->glba, c->gnlb,
				 sc ? G_UNKNOWN : G_ZERO, 0);
			break;
		case K_GOLD_DSM:
			if (!(le32toh(c->sqe.cdw11) & NVME_DSM_AD))
				break;
			if (sc) {
				gold_set(e, c->glba, c->gnlb, G_UNKNOWN, 0);
				break;
			}
			d = (struct nvme_dsm_range *)pg_ptr(e, c->list[0]);
			nr = (le32toh(c->sqe.cdw10) & 0xff) + 1;
			for (i = 0; i < nr; i++)
				gold_dealloc(e,
					     le64toh(d[i].slba) - e->gold_first,
					     le32toh(d[i].nlb));
			break;
		default:
			break;
		}
	} else {
		e->forgotten++;
		if (lossy && (c->kind == K_GOLD_W || c->kind == K_GOLD_WZ ||
			      c->kind == K_GOLD_DSM))
			gold_set(e, c->glba, c->gnlb, G_UNKNOWN, 0);
	}
	cmd_release(e, q, c);
	c->live = false;
	q->rec_of_cid[c->cid] = 0;
	q->cid_state[c->cid] = CID_DONE;
	q->free_recs[q->nfree++] = c->idx;
	q->outstanding--;
}

static void forget_all(struct eng *e, struct fq *q, bool lossy)
{
	unsigned int i;

	for (i = 0; i < SQ_MAX; i++)
		if (q->recs[i].live)
			cmd_finish(e, q, &q->recs[i], -1, lossy);
}

/* ---- submission ----------------------------------------------------- */

static __u64 max_commands;	/* --commands, 0: no limit */
static __u64 max_actions;	/* --actions */
static __u64 max_sequences;	/* --sequences */

static int submit(struct eng *e, struct fq *q, int max, __u64 now)
{
	struct guest_sq *sq = q->sq;
	struct toctou *t = &e->tt;
	int n = 0, rc;
	unsigned int i;

	while (n < max && guest_sq_space(sq) > 0 &&
	       (!max_commands || cur.commands < max_commands)) {
		__u16 slot = sq->tail;
		struct nvme_sqe s;
		struct cmd *c;

		/* A read may still be writing there. */
		if (q->pins[slot] || !q->nfree)
			break;
		c = &q->recs[q->free_recs[--q->nfree]];
		memset(c, 0, offsetof(struct cmd, sqe));
		c->idx = c - q->recs;
		c->gslot = -1;
		c->slot = slot;
		memset(&s, 0, sizeof(s));
		if (rnd_below(&q->rng, 100) < (unsigned int)e->hostile_pct)
			gen_hostile(e, q, c, &s, slot);
		else
			gen_plausible(e, q, c, &s);
		while (q->cid_state[q->next_cid] == CID_LIVE)
			q->next_cid++;
		c->cid = q->next_cid++;
		s.cid = htole16(c->cid);
		c->sqe = s;
		c->iter = cur.commands++;
		c->t_submit = now;
		c->live = true;
		e->kinds[c->kind]++;
		e->must_fail += !!(c->flags & CF_MUST_FAIL);
		/*
		 * The slot's last command was fetched, but may be in flight
		 * still: from now on the slot is this one's.
		 */
		pthread_spin_lock(&t->qlock[q->qid]);
		t->owner[q->qid][slot] = c->idx;
		t->rewritten[q->qid][c->idx] = 0;
		__atomic_store_n(&t->mask[q->qid][slot], 0, __ATOMIC_RELAXED);
		pthread_spin_unlock(&t->qlock[q->qid]);
		rc = guest_sq_push(sq, &s);
		if (rc) {
			/* guest_sq_space() said there was room. */
			violation("qid %u: no room in the SQ: %s", q->qid,
				  strerror(-rc));
			e->broken = true;
		}
		if (c->flags & CF_TOCTOU) {
			__u8 *live = t->page_live - PG_HTGT;

			__atomic_store_n(&t->mask[q->qid][slot],
					 toctou_mask(&s), __ATOMIC_RELEASE);
			for (i = 0; c->pool == POOL_HTGT && i < c->nlist; i++)
				__atomic_store_n(&live[c->list[i]], 1,
						 __ATOMIC_RELEASE);
		}
		q->rec_of_cid[c->cid] = c->idx + 1;
		q->cid_state[c->cid] = CID_LIVE;
		if (!q->outstanding)
			q->last_progress = now;
		q->outstanding++;
		n++;
	}
	if (n) {
		rc = guest_sq_ring(sq);
		if (rc)
			violation("qid %u: SQ doorbell %u: %s", q->qid,
				  sq->tail, strerror(-rc));
	}
	return n;
}

/* ---- completion ----------------------------------------------------- */

/* SCT 0..3, no Command Retry Delay (we never enabled ACRE). */
static bool status_plausible(__u16 st)
{
	return nvme_sct(st) <= 3 && !(st >> 12 & 3);
}

static void on_cpl(struct eng *e, struct fq *q, const struct guest_cpl *p,
		   __u64 now)
{
	struct guest_sq *sq = q->sq;
	__u16 idx;

	if (!status_plausible(p->status))
		violation("qid %u cid 0x%04x: status field 0x%04x is no NVMe status (sct %u, crd %u)",
			  q->qid, p->cid, p->status, nvme_sct(p->status),
			  p->status >> 12 & 3);
	if (p->sq_id != q->qid) {
		/* One SQ per CQ: nothing else may post here. */
		violation("CQ %u: completion names SQ %u (cid 0x%04x status 0x%04x)",
			  q->qid, p->sq_id, p->cid, p->status);
		return;
	}
	if (sq) {
		__u32 n = sq->entries;
		__u32 d = (p->sq_head + n - sq->head) % n;

		/* The head moves forward, never past what we queued. */
		if (p->sq_head >= n || d > (sq->tail + n - sq->head) % n)
			violation("qid %u cid 0x%04x: sq_head %u outside [%u, %u] of %u entries",
				  q->qid, p->cid, p->sq_head, sq->head,
				  sq->tail, n);
		else
			sq->head = p->sq_head;
	}
	idx = q->rec_of_cid[p->cid];
	if (!idx) {
		violation("qid %u: %s cid 0x%04x (status 0x%04x, sq_head %u)",
			  q->qid, q->cid_state[p->cid] == CID_DONE ?
			  "second completion of" : "completion of unknown",
			  p->cid, p->status, p->sq_head);
		return;
	}
	q->last_progress = now;
	cmd_finish(e, q, &q->recs[idx - 1], p->status, false);
}

/* Take what is in a CQ ring, by phase; returns how many. */
static int reap_ring(struct eng *e, struct fq *q,
		     volatile struct nvme_cqe *ring, __u32 entries,
		     __u32 *head, __u8 *phase)
{
	__u64 now = now_ns();
	int n = 0;

	while (n < (int)entries) {
		volatile struct nvme_cqe *ce = &ring[*head];
		__u16 st = le16toh(__atomic_load_n(&ce->status,
						   __ATOMIC_ACQUIRE));
		struct guest_cpl p;

		if ((st & 1) != *phase)
			break;
		p.result = le32toh(ce->result);
		p.sq_head = le16toh(ce->sq_head);
		p.sq_id = le16toh(ce->sq_id);
		p.cid = le16toh(ce->cid);
		p.status = st;
		if (++*head == entries) {
			*head = 0;
			*phase ^= 1;
		}
		n++;
		on_cpl(e, q, &p, now);
	}
	return n;
}

static int reap(struct eng *e, struct fq *q, bool ring)
{
	struct guest_cq *cq = q->cq;
	int n, rc;

	n = reap_ring(e, q, cq->ring, cq->entries, &cq->head, &cq->phase);
	if (n && ring) {
		rc = guest_cq_ring(cq);
		if (rc)
			violation("qid %u: CQ doorbell %u: %s", q->qid,
				  cq->head, strerror(-rc));
	}
	return n;
}

/* May the CQ head be published? Not after a bogus one. */
static bool ring_ok(struct fq *q)
{
	return q->state != Q_BOGUS || q->bogus_kind == BOGUS_SQ;
}

/* ---- queue pairs ---------------------------------------------------- */

static int qp_create(struct eng *e, struct fq *q)
{
	struct guest *g = &e->g;
	__u64 save = g->alloc_next;
	struct toctou *t = &e->tt;
	__u8 *cqp;
	int rc, i;

	q->sq = NULL;
	q->cq = NULL;
	/*
	 * State mode keeps queues short: each STOP, RESET, delete or memory
	 * table change waits for what is in flight, and more of them is what
	 * that mode is for.
	 */
	q->sq_entries = 2 + rnd_below(&e->rng, (e->state_mode ? STATE_Q_MAX :
						  SQ_MAX) - 1);
	q->cq_entries = 2 + rnd_below(&e->rng, (e->state_mode ? STATE_Q_MAX :
						  CQ_MAX) - 1);
	q->worker = rnd_below(&e->rng, NWORKERS);
	/* Our own places for the rings, between their canaries. */
	g->alloc_next = (__u64)PG_CQ(q->qid) << GUEST_PAGE_SHIFT;
	rc = guest_create_cq(g, q->qid, q->cq_entries, GUEST_CQ_IEN, &q->cq);
	if (!rc) {
		g->alloc_next = (__u64)PG_SQ(q->qid) << GUEST_PAGE_SHIFT;
		rc = guest_create_sq(g, q->qid, q->cq, q->sq_entries,
				     q->worker, 0, &q->sq);
		if (rc && guest_delete_cq(q->cq))
			e->broken = true;
		if (rc)
			q->cq = NULL;
	}
	g->alloc_next = save;
	if (rc) {
		violation("qid %u: creating a queue pair (sq %u, cq %u entries, worker %u): %s",
			  q->qid, q->sq_entries, q->cq_entries, q->worker,
			  strerror(-rc));
		q->sq = NULL;
		q->state = Q_NONE;
		return rc;
	}
	/* No CQE may land past the ring's last entry. */
	cqp = pg_ptr(e, PG_CQ(q->qid));
	memset(cqp + q->cq_entries * 16, CANARY,
	       GUEST_PAGE_SIZE - q->cq_entries * 16);
	memset(q->rec_of_cid, 0, sizeof(q->rec_of_cid));
	memset(q->cid_state, 0, sizeof(q->cid_state));
	memset(q->pins, 0, sizeof(q->pins));
	pthread_spin_lock(&t->qlock[q->qid]);
	memset(t->mask[q->qid], 0, sizeof(t->mask[q->qid]));
	memset(t->owner[q->qid], 0, sizeof(t->owner[q->qid]));
	memset(t->rewritten[q->qid], 0, sizeof(t->rewritten[q->qid]));
	pthread_spin_unlock(&t->qlock[q->qid]);
	q->nfree = 0;
	for (i = SQ_MAX - 1; i >= 0; i--) {
		q->recs[i].live = false;
		q->free_recs[q->nfree++] = i;
	}
	q->incarnation++;
	rng_init(&q->rng, 100 + q->qid, q->incarnation);
	q->next_cid = rnd(&q->rng);
	q->outstanding = 0;
	q->reaped = 0;
	q->last_progress = now_ns();
	q->state = Q_ACTIVE;
	e->recreated++;
	return 0;
}

/*
 * Delete @q's SQ - which posts what it fetched - take those completions,
 * forget the rest (never fetched, so never run), delete the CQ.
 */
static void qp_destroy(struct eng *e, struct fq *q, bool lossy)
{
	int rc, n;

	if (q->sq) {
		wd_begin("VHOST_NVME_DELETE_SQ qid %u", q->qid);
		rc = guest_delete_sq(q->sq);
		wd_end();
		if (rc) {
			violation("qid %u: VHOST_NVME_DELETE_SQ: %s", q->qid,
				  strerror(-rc));
			e->broken = true;
			return;
		}
		q->sq = NULL;
	}
	if (q->cq) {
		reap(e, q, !lossy);
		n = guest_cq_peek(q->cq);
		if (n)
			violation("qid %u: %d completions posted after VHOST_NVME_DELETE_SQ returned",
				  q->qid, n);
	}
	forget_all(e, q, lossy);
	if (q->cq) {
		wd_begin("VHOST_NVME_DELETE_CQ qid %u", q->qid);
		rc = guest_delete_cq(q->cq);
		wd_end();
		if (rc) {
			violation("qid %u: VHOST_NVME_DELETE_CQ: %s", q->qid,
				  strerror(-rc));
			e->broken = true;
			return;
		}
		q->cq = NULL;
	}
	q->state = Q_NONE;
}

static int set_dbbuf(struct eng *e)
{
	struct guest *g = &e->g;
	__u64 save = g->alloc_next;
	int rc;

	g->alloc_next = (__u64)PG_DBS << GUEST_PAGE_SHIFT;
	rc = guest_set_dbbuf(g);
	g->alloc_next = save;
	return rc;
}

/* ---- bogus doorbells and queue errors ------------------------------- */

static __u32 bogus_value(struct rng *r, __u32 n)
{
	static const __u32 v[] = { 0xffff, 0x10000, 0x7fffffff, 0xffffffff };

	switch (rnd_below(r, 3)) {
	case 0:
		return n;
	case 1:
		return n + 1 + rnd_below(r, 1000);
	default:
		return v[rnd_below(r, ARRAY_SIZE(v))];
	}
}

/*
 * A value not below the queue size stops the queue (the UAPI: "A value not
 * below the queue's size stops the queue and reports
 * VHOST_NVME_ERR_INVALID_DB_VALUE"), commands in flight or not. A CQ head
 * past what was consumed but in range is checked only when the device
 * reads the head, which it does when the CQ is full - and then any head
 * is within [head, tail] - so it goes on a quiet queue pair, and may or
 * may not be reported.
 */
static void bogus_start(struct eng *e, struct fq *q)
{
	struct rng *r = &e->rng;
	int rc;

	q->bogus_kind = rnd_below(r, NBOGUS);
	e->bogus[q->bogus_kind]++;
	if (q->bogus_kind == BOGUS_CQ_AHEAD) {
		q->state = Q_QUIESCE;
		return;
	}
	q->state = Q_BOGUS;
	q->bogus_expect = true;
	q->bogus_deadline = now_ns() + 5 * NS_PER_SEC;
	if (q->bogus_kind == BOGUS_SQ) {
		q->bogus_value = bogus_value(r, q->sq_entries);
		rc = guest_sq_doorbell(q->sq, q->bogus_value, true);
	} else {
		q->bogus_value = bogus_value(r, q->cq_entries);
		rc = guest_cq_doorbell(q->cq, q->bogus_value, true);
	}
	/* The UAPI leaves open whether the ioctl fails too. */
	if (rc && rc != -EINVAL)
		violation("qid %u: bogus %s doorbell %u: %s", q->qid,
			  q->bogus_kind == BOGUS_SQ ? "SQ tail" : "CQ head",
			  q->bogus_value, strerror(-rc));
}

static void bogus_ahead(struct eng *e, struct fq *q)
{
	struct guest_cq *cq = q->cq;
	int rc;

	rc = guest_cq_ring(cq);
	if (!rc) {
		q->bogus_value = (cq->head + 1 +
				  rnd_below(&e->rng, cq->entries - 1)) %
				 cq->entries;
		rc = guest_cq_doorbell(cq, q->bogus_value, true);
	}
	if (rc)
		violation("qid %u: CQ head doorbell %u: %s", q->qid,
			  q->bogus_value, strerror(-rc));
	q->state = Q_BOGUS;
	q->bogus_expect = false;
	q->bogus_deadline = now_ns() + 300 * NS_PER_MS;
}

/* Delete the pair a bogus doorbell broke, and make a new one unless @end. */
static void bogus_done(struct eng *e, struct fq *q, bool end)
{
	q->last_bogus_kind = q->bogus_kind;
	q->last_bogus_value = q->bogus_value;
	q->last_bogus_ns = now_ns();
	qp_destroy(e, q, q->bogus_kind != BOGUS_SQ);
	if (!e->broken && !end)
		qp_create(e, q);
}

static void on_error(struct eng *e, const struct vhost_nvme_error *err)
{
	struct fq *q;
	bool cq;

	if (err->type == VHOST_NVME_ERR_OVERFLOW) {
		violation("error records overflowed (%u dropped), though each was read as it came",
			  err->value);
		return;
	}
	if (err->qid < 1 || err->qid > NQ) {
		violation("error record for qid %u (cq %u type %u value %u), a queue we never had",
			  err->qid, err->cq, err->type, err->value);
		return;
	}
	q = e->q[err->qid];
	if (q->state == Q_BOGUS) {
		cq = q->bogus_kind != BOGUS_SQ;
		if (err->cq != cq ||
		    err->type != VHOST_NVME_ERR_INVALID_DB_VALUE ||
		    err->value != q->bogus_value || err->gpa)
			violation("qid %u: after a bogus %s doorbell %u the error record says cq %u type %u value %u gpa 0x%llx",
				  q->qid, cq ? "CQ" : "SQ", q->bogus_value,
				  err->cq, err->type, err->value,
				  (unsigned long long)err->gpa);
		cur.queue_errors++;
		e->bogus_reported++;
		bogus_done(e, q, false);
		return;
	}
	/* The record of a bogus doorbell the teardown overtook. */
	if (err->type == VHOST_NVME_ERR_INVALID_DB_VALUE &&
	    err->value == q->last_bogus_value &&
	    err->cq == (q->last_bogus_kind != BOGUS_SQ) &&
	    now_ns() - q->last_bogus_ns < 2 * NS_PER_SEC)
		return;
	violation("unexpected error record: qid %u cq %u type %u value %u gpa 0x%llx (queue state %d)",
		  err->qid, err->cq, err->type, err->value,
		  (unsigned long long)err->gpa, q->state);
	if (q->state != Q_NONE) {
		qp_destroy(e, q, true);
		if (!e->broken)
			qp_create(e, q);
	}
}

static void handle_errors(struct eng *e)
{
	struct vhost_nvme_error err;
	__u64 cnt;
	int i, rc;

	ignore(read(e->g.errfd, &cnt, sizeof(cnt)));
	for (i = 0; i < 128 && !e->broken; i++) {
		rc = guest_get_error(&e->g, &err);
		if (rc == -EAGAIN)
			break;
		if (rc) {
			violation("VHOST_NVME_GET_ERROR: %s", strerror(-rc));
			break;
		}
		on_error(e, &err);
	}
}

/* ---- memory and statistics checks ----------------------------------- */

static void check_canary(struct eng *e, __u8 *p, size_t len, int c,
			 const char *what, __u64 gpa)
{
	long at = first_not(p, c, len);

	if (at < 0)
		return;
	violation("%s at gpa 0x%llx changed: byte %ld is 0x%02x, was 0x%02x",
		  what, (unsigned long long)(gpa + at), at, p[at], c);
	/* Report it once. */
	memset(p, c, len);
}

static void check_memory(struct eng *e)
{
	__u32 used[2 * NQ + 2], nused = 0, i, k;
	volatile __u32 *pages[2] = {
		(volatile __u32 *)pg_ptr(e, PG_DBS),
		(volatile __u32 *)pg_ptr(e, PG_EIS),
	};
	char what[96];
	int q, s;

	for (q = 1; q <= NQ; q++) {
		struct fq *fq = e->q[q];

		snprintf(what, sizeof(what), "the canary page before CQ %d", q);
		check_canary(e, pg_ptr(e, PG_CQ(q) - 1), GUEST_PAGE_SIZE,
			     CANARY, what, pg_gpa(e, PG_CQ(q) - 1));
		snprintf(what, sizeof(what), "the canary page after CQ %d", q);
		check_canary(e, pg_ptr(e, PG_CQ(q) + 1), GUEST_PAGE_SIZE,
			     CANARY, what, pg_gpa(e, PG_CQ(q) + 1));
		if (fq->cq) {
			__u32 end = fq->cq_entries * 16;

			snprintf(what, sizeof(what),
				 "CQ %d's page past its %u entries", q,
				 fq->cq_entries);
			check_canary(e, pg_ptr(e, PG_CQ(q)) + end,
				     GUEST_PAGE_SIZE - end, CANARY, what,
				     pg_gpa(e, PG_CQ(q)) + end);
		}
		used[nused++] = guest_db_index(&e->g, q, false);
		used[nused++] = guest_db_index(&e->g, q, true);
	}
	for (s = 0; s <= GSLOTS; s++)
		check_canary(e, pg_ptr(e, PG_GCANARY(s)), GUEST_PAGE_SIZE,
			     CANARY, "a golden buffer's canary page",
			     pg_gpa(e, PG_GCANARY(s)));
	/* Doorbell and EventIdx entries of queues that never exist. */
	for (k = 0; k < 2; k++) {
		for (i = 0; i < GUEST_PAGE_SIZE / 4; i++) {
			__u32 j, v = pages[k][i];

			if (!v)
				continue;
			for (j = 0; j < nused && used[j] != i; j++)
				;
			if (j < nused)
				continue;
			violation("%s page: u32 %u = 0x%x, no queue's entry (dstrd %u)",
				  k ? "EventIdx" : "shadow doorbell", i, v,
				  e->dstrd);
			pages[k][i] = 0;
		}
	}
	if (e->r2.canary)
		check_canary(e, e->r2.addr, e->r2.size, R2_CANARY,
			     "the mapping that replaced removed region 2",
			     e->r2.gpa);
	if (e->r3.addr)
		check_canary(e, e->r3.addr, e->r3.size, CANARY,
			     "region 3, which no command names", e->r3.gpa);
}

static void check_stats(struct eng *e)
{
	struct vhost_nvme_queue_stats st;
	int q, rc;

	for (q = 1; q <= NQ; q++) {
		struct fq *fq = e->q[q];

		if (!fq->sq)
			continue;
		wd_begin("VHOST_NVME_GET_QUEUE_STATS qid %d", q);
		rc = guest_get_stats(&e->g, q, &st);
		wd_end();
		if (rc) {
			violation("VHOST_NVME_GET_QUEUE_STATS qid %d: %s", q,
				  strerror(-rc));
			continue;
		}
		if (st.qid != q || st.commands < fq->reaped ||
		    st.errors > st.commands)
			violation("VHOST_NVME_GET_QUEUE_STATS qid %d: qid %u commands %llu errors %llu, and we saw %llu completions",
				  q, st.qid, (unsigned long long)st.commands,
				  (unsigned long long)st.errors,
				  (unsigned long long)fq->reaped);
	}
	/* "-ENOENT if neither queue exists" */
	rc = guest_get_stats(&e->g, NQ + 1 + rnd_below(&e->rng, 128 - NQ), &st);
	if (rc != -ENOENT)
		violation("VHOST_NVME_GET_QUEUE_STATS of a queue that does not exist: %s",
			  rc ? strerror(-rc) : "success");
}

/* ---- the loop ------------------------------------------------------- */

static void idle_wait(struct eng *e, int ms)
{
	struct pollfd p[NQ + 1];
	int n = 0, i, q;
	__u64 cnt;

	for (q = 1; q <= NQ; q++) {
		struct guest_cq *cq = e->q[q]->cq;

		if (cq && cq->irqfd >= 0)
			p[n++] = (struct pollfd){ cq->irqfd, POLLIN, 0 };
	}
	if (e->g.errfd >= 0)
		p[n++] = (struct pollfd){ e->g.errfd, POLLIN, 0 };
	if (poll(p, n, ms) <= 0)
		return;
	for (i = 0; i < n; i++) {
		if (!(p[i].revents & POLLIN))
			continue;
		if (p[i].fd == e->g.errfd)
			handle_errors(e);
		else
			ignore(read(p[i].fd, &cnt, sizeof(cnt)));
	}
}

static void hang_recover(struct eng *e, struct fq *q, __u64 now)
{
	char list[512] = "", sqe[200];
	size_t n = 0;
	int i, k = 0;
	const struct cmd *first = NULL;

	for (i = 0; i < SQ_MAX && k < 8; i++) {
		const struct cmd *c = &q->recs[i];

		if (!c->live)
			continue;
		if (!first || c->iter < first->iter)
			first = c;
		k++;
		n += snprintf(list + n, sizeof(list) - n, " 0x%04x(iter %llu)",
			      c->cid, (unsigned long long)c->iter);
		if (n >= sizeof(list))
			break;
	}
	violation("hang: qid %u: %d commands outstanding and none completed for %llu s (state %d, sq %u cq %u entries):%s; oldest sqe %s",
		  q->qid, q->outstanding,
		  (unsigned long long)((now - q->last_progress) / NS_PER_SEC),
		  q->state, q->sq_entries, q->cq_entries, list,
		  first ? hex(&first->sqe, 64, sqe, sizeof(sqe)) : "-");
	qp_destroy(e, q, true);
	if (!e->broken)
		qp_create(e, q);
}

/*
 * One command that has not completed for 20 s while others of its queue
 * did (which the queue-wide check would not see): lost, or hung. Twice
 * the hang limit, as a command may queue behind a tiny CQ and a few large
 * write zeroes on a slow VM. Reported once; it stays outstanding, in case
 * it completes after all.
 */
static void check_ages(struct eng *e, __u64 now)
{
	int q, i;

	for (q = 1; q <= NQ; q++) {
		struct fq *fq = e->q[q];

		if (fq->state != Q_ACTIVE)
			continue;
		for (i = 0; i < SQ_MAX; i++) {
			struct cmd *c = &fq->recs[i];

			if (!c->live || c->late ||
			    now - c->t_submit <= 2 * HANG_NS)
				continue;
			c->late = true;
			cmd_violation(e, fq, c,
				      "hang: not completed %llu s after submission",
				      (unsigned long long)((now - c->t_submit) /
							   NS_PER_SEC));
		}
	}
}

static void tick(struct eng *e, __u64 now)
{
	struct pollfd pfd = { e->g.errfd, POLLIN, 0 };
	int i;

	e->next_tick = now + TICK_NS;
	if (e->g.errfd >= 0 && poll(&pfd, 1, 0) > 0)
		handle_errors(e);
	for (i = 1; i <= NQ && !e->broken; i++) {
		struct fq *q = e->q[i];

		if (q->state == Q_QUIESCE && !q->outstanding)
			bogus_ahead(e, q);
		if (q->state == Q_BOGUS && now > q->bogus_deadline) {
			if (q->bogus_expect)
				violation("qid %u: no error record within 5 s of a bogus %s doorbell %u (%u entries)",
					  q->qid, q->bogus_kind == BOGUS_SQ ?
					  "SQ tail" : "CQ head", q->bogus_value,
					  q->bogus_kind == BOGUS_SQ ?
					  q->sq_entries : q->cq_entries);
			bogus_done(e, q, false);
		}
		if (q->state != Q_NONE && q->state != Q_BOGUS &&
		    q->outstanding && now - q->last_progress > HANG_NS)
			hang_recover(e, q, now);
	}
	/* Rarely: about one bogus doorbell every 3 s. */
	if (e->hostile_pct && rnd_below(&e->rng, 1000) < 7) {
		struct fq *q = e->q[1 + rnd_below(&e->rng, NQ)];

		if (q->state == Q_ACTIVE)
			bogus_start(e, q);
	}
	if (now >= e->next_check) {
		check_memory(e);
		e->next_check = now + 250 * NS_PER_MS;
	}
	if (now >= e->next_stats) {
		check_stats(e);
		e->next_stats = now + NS_PER_SEC;
	}
	if (now >= e->next_age) {
		check_ages(e, now);
		e->next_age = now + NS_PER_SEC;
	}
}

static void state_action(struct eng *e);

static void io_loop(struct eng *e, __u64 deadline)
{
	__u64 now = now_ns();
	int busy, i;

	e->next_tick = e->next_check = e->next_stats = e->next_action = now;
	e->next_age = now;
	while (now < deadline && !e->broken &&
	       (!max_commands || cur.commands < max_commands) &&
	       (!max_actions || cur.actions < max_actions)) {
		wd_begin("the %s I/O loop (submitting, reaping, ringing)",
			 cur.mode);
		busy = 0;
		for (i = 1; i <= NQ; i++)
			if (e->q[i]->state == Q_ACTIVE)
				busy += submit(e, e->q[i],
					       e->fast ? SQ_MAX : 32, now);
		for (i = 1; i <= NQ; i++)
			if (e->q[i]->state != Q_NONE)
				busy += reap(e, e->q[i], ring_ok(e->q[i]));
		if (!busy)
			idle_wait(e, 2);
		now = now_ns();
		if (now >= e->next_tick)
			tick(e, now);
		if (e->state_mode && now >= e->next_action && !e->broken) {
			state_action(e);
			now = now_ns();
			e->next_action = now + (2 + rnd_below(&e->rng, 24)) *
					       NS_PER_MS;
		}
	}
	wd_end();
}

/* The end: no new commands; everything in flight must complete. */
static void drain(struct eng *e)
{
	__u64 end = now_ns() + HANG_NS;
	char sqe[200];
	int i, n, busy, k;

	for (i = 1; i <= NQ && !e->broken; i++) {
		struct fq *q = e->q[i];

		if (q->state == Q_QUIESCE)
			q->state = Q_ACTIVE;
		if (q->state == Q_BOGUS)
			bogus_done(e, q, true);
	}
	while (!e->broken && now_ns() < end) {
		wd_begin("draining the queues at the end");
		for (i = 1, n = 0, busy = 0; i <= NQ; i++) {
			if (e->q[i]->state == Q_NONE)
				continue;
			busy += reap(e, e->q[i], true);
			n += e->q[i]->outstanding;
		}
		if (!n)
			break;
		if (!busy)
			idle_wait(e, 5);
	}
	wd_end();
	for (i = 1; i <= NQ; i++) {
		struct fq *q = e->q[i];

		if (q->state == Q_NONE || !q->outstanding)
			continue;
		violation("lost: qid %u: %d commands never completed, 10 s after the last was submitted",
			  q->qid, q->outstanding);
		for (n = 0, k = 0; n < SQ_MAX && k < 4; n++) {
			struct cmd *c = &q->recs[n];

			if (!c->live)
				continue;
			k++;
			printf("#   missing: qid %u cid 0x%04x iter %llu (%s): sqe %s\n",
			       q->qid, c->cid, (unsigned long long)c->iter,
			       c->what, hex(&c->sqe, 64, sqe, sizeof(sqe)));
		}
	}
}

/* After the run, the backend itself - not read through the device. */
static void gold_final_check(struct eng *e)
{
	const __u64 chunk = 1ull << 20;
	__u64 done, bad = 0;
	char why[256];
	int rc;
	__u32 i;

	for (done = 0; done < e->gold_n * e->lbs; done += chunk) {
		__u64 len = MIN(chunk, e->gold_n * e->lbs - done);

		rc = guest_backend_pread(&e->be, e->tmp, len,
					 e->gold_first * e->lbs + done);
		if (rc) {
			violation("reading the golden area from %s: %s",
				  e->be.path, strerror(-rc));
			return;
		}
		for (i = 0; i < len / e->lbs; i++) {
			__u32 rel = done / e->lbs + i;

			if (gold_check(e, rel, e->tmp + i * e->lbs, why,
				       sizeof(why)))
				continue;
			if (!bad++)
				violation("golden area in the backend after the run: %s",
					  why);
		}
	}
	if (bad > 1)
		printf("# %llu golden blocks differ in all\n",
		       (unsigned long long)bad);
}

/* ---- the TOCTOU thread ----------------------------------------------- */

/*
 * Rewrites bytes of SQEs in flight (only those toctou_mask() allows) and
 * of hostile writes' PRP list pages, in short bursts: a device that reads
 * an SQE or a list twice, or acts on fields it checked before the guest
 * changed them, is caught by the checks, not by luck.
 */
static void *toctou_fn(void *arg)
{
	struct eng *e = arg;
	struct toctou *t = &e->tt;
	struct rng r;
	int i, q, s, b, k;

	rng_init(&r, 7, 0);
	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		for (i = 0; i < 32; i++) {
			__u8 *p, v;
			__u64 m;

			if (chance(&r, 80)) {
				q = 1 + rnd_below(&r, NQ);
				s = rnd_below(&r, SQ_MAX);
				if (!__atomic_load_n(&t->mask[q][s],
						     __ATOMIC_ACQUIRE))
					continue;
				pthread_spin_lock(&t->qlock[q]);
				m = __atomic_load_n(&t->mask[q][s],
						    __ATOMIC_RELAXED);
				if (m) {
					/* A random byte of those allowed. */
					k = __builtin_popcountll(m);
					k = rnd_below(&r, k);
					for (b = 0; k || !(m >> b & 1); b++)
						if (m >> b & 1)
							k--;
					p = pg_ptr(e, PG_SQ(q)) + s * 64 + b;
					v = chance(&r, 50) ? rnd(&r) :
					    *p ^ (1u << rnd_below(&r, 8));
					__atomic_store_n(p, v,
							 __ATOMIC_RELAXED);
					t->rewritten[q][t->owner[q][s]] = 1;
					t->mutations++;
				}
				pthread_spin_unlock(&t->qlock[q]);
			} else {
				s = rnd_below(&r, HTGT_PAGES);
				if (!__atomic_load_n(&t->page_live[s],
						     __ATOMIC_ACQUIRE))
					continue;
				pthread_spin_lock(&t->plock);
				if (t->page_live[s]) {
					p = pg_ptr(e, PG_HTGT + s) +
					    rnd_below(&r, GUEST_PAGE_SIZE);
					__atomic_store_n(p, (__u8)rnd(&r),
							 __ATOMIC_RELAXED);
					t->mutations++;
				}
				pthread_spin_unlock(&t->plock);
			}
		}
		/* Leave the CPU to the guest and the workers (2 vCPUs). */
		if (chance(&r, 30))
			sched_yield();
		else
			usleep(20 + rnd_below(&r, 200));
	}
	return NULL;
}

/* ---- memory regions and the table (state mode) ------------------------ */

static int region_map(struct region *rg, __u64 gpa, __u64 size, int fill,
		      void *at)
{
	int fd = memfd_create("vhost-nvme-fuzz", MFD_CLOEXEC);
	void *p;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size)) {
		close(fd);
		return -errno;
	}
	p = mmap(at, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | (at ? MAP_FIXED : 0), fd, 0);
	if (p == MAP_FAILED || (at && p != at)) {
		close(fd);
		return -ENOMEM;
	}
	if (fill)
		memset(p, fill, size);
	rg->addr = p;
	rg->memfd = fd;
	rg->gpa = gpa;
	rg->size = size;
	return 0;
}

static void region_unmap(struct region *rg)
{
	if (rg->addr)
		munmap(rg->addr, rg->size);
	if (rg->memfd >= 0)
		close(rg->memfd);
	rg->addr = NULL;
	rg->memfd = -1;
}

/* Region 0 (guest memory), and regions 2 and 3 when present. */
static int set_mem_table(struct eng *e)
{
	struct vhost_memory *m;
	int rc;

	m = calloc(1, sizeof(*m) + 3 * sizeof(m->regions[0]));
	if (!m)
		return -ENOMEM;
	m->regions[0].guest_phys_addr = e->g.mem_gpa;
	m->regions[0].memory_size = e->g.mem_size;
	m->regions[0].userspace_addr = (uintptr_t)e->g.mem;
	m->nregions = 1;
	if (e->r2.present) {
		m->regions[m->nregions].guest_phys_addr = e->r2.gpa;
		m->regions[m->nregions].memory_size = e->r2.size;
		m->regions[m->nregions].userspace_addr = (uintptr_t)e->r2.addr;
		m->nregions++;
	}
	if (e->r3.present) {
		m->regions[m->nregions].guest_phys_addr = e->r3.gpa;
		m->regions[m->nregions].memory_size = e->r3.size;
		m->regions[m->nregions].userspace_addr = (uintptr_t)e->r3.addr;
		m->nregions++;
	}
	wd_begin("VHOST_SET_MEM_TABLE with %u regions", m->nregions);
	rc = ioctl(e->g.fd, VHOST_SET_MEM_TABLE, m) ? -errno : 0;
	wd_end();
	free(m);
	return rc;
}

/* ---- state mode: the VMM's actions --------------------------------------- */

static void must(int rc, const char *what)
{
	if (rc)
		violation("%s: %s", what, strerror(-rc));
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

static void reap_all(struct eng *e)
{
	int i;

	for (i = 1; i <= NQ; i++)
		if (e->q[i]->state != Q_NONE)
			while (reap(e, e->q[i], true))
				;
}

/*
 * STOP returns once everything fetched has completed: after taking those
 * completions nothing more may come until START, though the guest goes
 * on queueing and ringing.
 */
static void act_stop_start(struct eng *e)
{
	int i, n, rc;

	wd_begin("VHOST_NVME_STOP");
	rc = guest_stop(&e->g);
	wd_end();
	if (rc) {
		must(rc, "VHOST_NVME_STOP");
		return;
	}
	reap_all(e);
	if (chance(&e->rng, 50))
		for (i = 1; i <= NQ; i++)
			if (e->q[i]->state == Q_ACTIVE)
				submit(e, e->q[i], 8, now_ns());
	guest_msleep(1);
	for (i = 1; i <= NQ; i++) {
		if (e->q[i]->state == Q_NONE)
			continue;
		n = guest_cq_peek(e->q[i]->cq);
		if (n)
			violation("qid %d: %d completions posted while the device was stopped",
				  i, n);
	}
	must(guest_start(&e->g), "VHOST_NVME_START");
}

/*
 * Where each CQ ring is and how far we took it, so that what the device
 * posted before a reset or a close can still be taken once the queues
 * (and guest_*'s records of them) are gone.
 */
struct ring_snap {
	volatile struct nvme_cqe *ring;
	__u32 entries, head;
	__u8 phase;
};

static void rings_snap(struct eng *e, struct ring_snap *old)
{
	int i;

	for (i = 1; i <= NQ; i++) {
		struct guest_cq *cq = e->q[i]->cq;

		old[i].ring = cq ? cq->ring : NULL;
		if (cq) {
			old[i].entries = cq->entries;
			old[i].head = cq->head;
			old[i].phase = cq->phase;
		}
	}
}

/*
 * The device's queues are gone: take what they posted, forget the rest
 * (@lossy: it may have run without a completion).
 */
static void rings_take(struct eng *e, struct ring_snap *old, bool lossy)
{
	int i;

	for (i = 1; i <= NQ; i++) {
		struct fq *q = e->q[i];

		q->sq = NULL;
		q->cq = NULL;
		if (old[i].ring)
			reap_ring(e, q, old[i].ring, old[i].entries,
				  &old[i].head, &old[i].phase);
		forget_all(e, q, lossy);
		q->state = Q_NONE;
	}
}

/*
 * RESET: STOP (what was fetched completes into the old CQ rings), every
 * queue deleted, doorbell buffer cleared, coalescing back to defaults.
 * What never made it into a CQE was never fetched: forgotten.
 */
static void act_reset(struct eng *e)
{
	struct ring_snap old[NQ + 1];
	int i, rc;

	rings_snap(e, old);
	wd_begin("VHOST_NVME_RESET");
	rc = guest_reset(&e->g);
	wd_end();
	if (rc) {
		must(rc, "VHOST_NVME_RESET");
		e->broken = true;
		return;
	}
	/* guest_reset() freed the records of the device's queues. */
	rings_take(e, old, false);
	if (chance(&e->rng, 30))
		e->shadow = !e->shadow;
	if (e->shadow)
		must(set_dbbuf(e), "VHOST_NVME_SET_DBBUF after RESET");
	must(guest_start(&e->g), "VHOST_NVME_START after RESET");
	for (i = 1; i <= NQ && !e->broken; i++)
		qp_create(e, e->q[i]);
}

static int dev_config(struct eng *e, char *why, size_t len);
static int dev_start(struct eng *e, bool tune);

/*
 * The VMM closes the device with I/O in flight (it crashed, or restarts
 * its device model) and opens a new one over the same guest memory.
 * close() returns once what was in flight has ended; whatever has no
 * completion by then is forgotten, and may have run. The new device gets
 * the configuration, namespace and memory table the old one had.
 */
static void act_reopen(struct eng *e)
{
	struct ring_snap old[NQ + 1];
	char why[256] = "";
	int rc;

	rings_snap(e, old);
	wd_begin("closing the device with I/O in flight and opening a new one");
	rc = guest_reopen(&e->g);
	wd_end();
	rings_take(e, old, true);
	if (rc) {
		violation("opening a new device after a close under I/O: %s",
			  strerror(-rc));
		e->broken = true;
		return;
	}
	rc = set_mem_table(e);
	if (!rc)
		rc = dev_config(e, why, sizeof(why));
	if (!rc)
		rc = dev_start(e, false);
	if (rc) {
		if (!cur.violations)
			violation("setting up the new device: %s",
				  why[0] ? why : strerror(rc < 0 ? -rc : rc));
		e->broken = true;
	}
}

static struct fq *live_queue(struct eng *e)
{
	int i, k = rnd_below(&e->rng, NQ);

	for (i = 0; i < NQ; i++) {
		struct fq *q = e->q[1 + (k + i) % NQ];

		if (q->state == Q_ACTIVE)
			return q;
	}
	return NULL;
}

/* DELETE_SQ with commands in flight: it posts them before it returns. */
static void act_delete(struct eng *e)
{
	struct fq *q = live_queue(e);

	if (!q)
		return;
	qp_destroy(e, q, false);
	if (!e->broken)
		qp_create(e, q);
}

/* "-EBUSY while an SQ uses it" */
static void act_delete_cq_busy(struct eng *e)
{
	struct fq *q = live_queue(e);
	struct vhost_nvme_queue_id id = { 0 };
	int rc;

	if (!q)
		return;
	id.qid = q->qid;
	rc = xioctl(e->g.fd, VHOST_NVME_DELETE_CQ, &id);
	if (rc != -EBUSY) {
		violation("qid %u: VHOST_NVME_DELETE_CQ while its SQ exists: %s, want EBUSY",
			  q->qid, rc ? strerror(-rc) : "success");
		e->broken = true;
	}
}

/*
 * Shadow doorbells on or off under I/O. Off, the device goes on from the
 * last shadow values it read, which may be behind: forward the current
 * tails and heads, as the guest's next doorbell writes would.
 */
static void act_dbbuf(struct eng *e)
{
	int i;

	if (!e->g.dbs) {
		must(set_dbbuf(e), "VHOST_NVME_SET_DBBUF under I/O");
		e->shadow = true;
		return;
	}
	must(guest_clear_dbbuf(&e->g), "VHOST_NVME_CLEAR_DBBUF under I/O");
	e->shadow = false;
	for (i = 1; i <= NQ; i++) {
		struct fq *q = e->q[i];

		if (q->state != Q_ACTIVE)
			continue;
		must(guest_sq_doorbell(q->sq, q->sq->tail, true),
		     "forwarding the SQ tail after CLEAR_DBBUF");
		must(guest_cq_doorbell(q->cq, q->cq->head, true),
		     "forwarding the CQ head after CLEAR_DBBUF");
	}
}

static void act_poll(struct eng *e)
{
	struct vhost_nvme_poll p = { 0 };

	p.poll_us = chance(&e->rng, 20) ? VHOST_NVME_POLL_DEFAULT :
		    rnd_below(&e->rng, VHOST_NVME_MAX_POLL_US + 1);
	must(xioctl(e->g.fd, VHOST_NVME_SET_POLL, &p), "VHOST_NVME_SET_POLL");
}

static void act_coalescing(struct eng *e)
{
	struct vhost_nvme_coalescing c = { 0 };

	c.threshold = rnd(&e->rng);
	c.time = chance(&e->rng, 30) ? 0 : rnd(&e->rng);
	must(xioctl(e->g.fd, VHOST_NVME_SET_COALESCING, &c),
	     "VHOST_NVME_SET_COALESCING");
}

static void act_vector(struct eng *e)
{
	struct vhost_nvme_vector_config v = { 0 };

	/* Our CQs use vector = qid. */
	v.vector = chance(&e->rng, 60) ? 1 + rnd_below(&e->rng, NQ) :
		   rnd_below(&e->rng, VHOST_NVME_MAX_VECTORS);
	v.flags = chance(&e->rng, 50) ? VHOST_NVME_VECTOR_F_NO_COALESCE : 0;
	must(xioctl(e->g.fd, VHOST_NVME_SET_VECTOR_CONFIG, &v),
	     "VHOST_NVME_SET_VECTOR_CONFIG");
}

static void act_affinity(struct eng *e)
{
	struct vhost_nvme_worker_affinity a = { 0 };
	char what[64];

	a.worker = chance(&e->rng, 80) ? rnd_below(&e->rng, NWORKERS) :
		   rnd_below(&e->rng, VHOST_NVME_MAX_WORKERS);
	if (!chance(&e->rng, 25))
		cpu_subset(&e->rng, e->cpus, a.cpus);
	snprintf(what, sizeof(what),
		 "VHOST_NVME_SET_WORKER_AFFINITY worker %u cpus 0x%llx",
		 a.worker, (unsigned long long)a.cpus[0]);
	wd_begin("%s", what);
	must(xioctl(e->g.fd, VHOST_NVME_SET_WORKER_AFFINITY, &a), what);
	wd_end();
}

static void act_mem_same(struct eng *e)
{
	must(set_mem_table(e), "VHOST_SET_MEM_TABLE, the same table again");
}

/* Region 3 in and out: a region nothing uses, which must stay untouched. */
static void act_mem_extra(struct eng *e)
{
	e->r3.present = !e->r3.present;
	must(set_mem_table(e), e->r3.present ?
	     "VHOST_SET_MEM_TABLE with an extra region" :
	     "VHOST_SET_MEM_TABLE without the extra region");
}

/*
 * Region removal under I/O. Region 2 holds the buffers of reads and writes
 * in flight; it leaves the table, is unmapped right after (the UAPI lets a
 * VMM do so once VHOST_SET_MEM_TABLE returns) and a new memfd full of a
 * canary byte is mapped in its place. Commands into it may fail, but
 * complete exactly once; the canary mapping must never change. Region 2
 * comes back only when none of them is left.
 */
static void act_mem_r2(struct eng *e)
{
	void *at = e->r2.addr;
	unsigned int n = 0;
	int i, j, rc;

	if (e->r2.present) {
		for (i = 1; i <= NQ; i++)
			for (j = 0; j < SQ_MAX; j++)
				n += e->q[i]->recs[j].live &&
				     e->q[i]->recs[j].flags & CF_R2;
		e->r2.present = false;
		e->r2_epoch++;
		e->r2_old += n;
		must(set_mem_table(e),
		     "VHOST_SET_MEM_TABLE removing region 2 under I/O");
		region_unmap(&e->r2);
		rc = region_map(&e->r2, R2_GPA, R2_SIZE, R2_CANARY, at);
		if (rc) {
			violation("mapping the canary over removed region 2: %s",
				  strerror(-rc));
			e->broken = true;
			return;
		}
		e->r2.canary = true;
		return;
	}
	if (e->r2_old)
		return;
	check_canary(e, e->r2.addr, e->r2.size, R2_CANARY,
		     "the mapping that replaced removed region 2", e->r2.gpa);
	region_unmap(&e->r2);
	rc = region_map(&e->r2, R2_GPA, R2_SIZE, 0, at);
	if (rc) {
		violation("mapping region 2 again: %s", strerror(-rc));
		e->broken = true;
		return;
	}
	e->r2.canary = false;
	e->r2.present = true;
	must(set_mem_table(e), "VHOST_SET_MEM_TABLE adding region 2 back");
}

static const struct {
	const char *name;
	void (*fn)(struct eng *e);
	unsigned int weight;
} actions[] = {
	{ "stop+start", act_stop_start, 14 },
	{ "reset", act_reset, 5 },
	{ "delete+recreate", act_delete, 14 },
	{ "delete CQ in use", act_delete_cq_busy, 3 },
	{ "dbbuf switch", act_dbbuf, 10 },
	{ "poll", act_poll, 8 },
	{ "coalescing", act_coalescing, 8 },
	{ "vector config", act_vector, 6 },
	{ "worker affinity", act_affinity, 8 },
	{ "same memory table", act_mem_same, 6 },
	{ "extra region", act_mem_extra, 5 },
	{ "region 2 removal", act_mem_r2, 9 },
	{ "close+reopen", act_reopen, 4 },
};

static void state_action(struct eng *e)
{
	unsigned int total = 0, i, k;
	__u64 t0;

	for (i = 0; i < ARRAY_SIZE(actions); i++)
		total += actions[i].weight;
	k = rnd_below(&e->rng, total);
	for (i = 0; k >= actions[i].weight; i++)
		k -= actions[i].weight;
	cur.actions++;
	e->act[i]++;
	wd_begin("the state action %s", actions[i].name);
	t0 = now_ns();
	actions[i].fn(e);
	e->act_ns[i] += now_ns() - t0;
	wd_end();
}

/* ---- setting up and tearing down an I/O mode ------------------------- */

static const char *backend_name(enum guest_backend_kind k)
{
	switch (k) {
	case GUEST_BACKEND_BRD:
		return "brd";
	case GUEST_BACKEND_NULLB:
		return "null_blk";
	default:
		return "file";
	}
}

/* Generation 0 of the golden area, written straight to the backend. */
static int gold_init(struct eng *e)
{
	const __u64 chunk = 1ull << 20;
	__u64 done, i;
	int rc;

	e->gst = calloc(e->gold_n, sizeof(*e->gst));
	e->gbusy = calloc(e->gold_n, 1);
	if (!e->gst || !e->gbusy)
		return -ENOMEM;
	for (done = 0; done < e->gold_n * e->lbs; done += chunk) {
		__u64 len = MIN(chunk, e->gold_n * e->lbs - done);

		for (i = 0; i < len / e->lbs; i++)
			gold_fill(e, e->gold_first + done / e->lbs + i, 0,
				  e->tmp + i * e->lbs);
		rc = guest_backend_pwrite(&e->be, e->tmp, len,
					  e->gold_first * e->lbs + done);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * The device's configuration and namespace, as chosen in eng_setup().
 * Returns 1 if this backend cannot serve as a namespace here.
 */
static int dev_config(struct eng *e, char *why, size_t len)
{
	struct guest *g = &e->g;
	int rc;

	must(rc = guest_set_config(g, e->mdts, e->dstrd, NQ),
	     "VHOST_NVME_SET_CONFIG");
	if (rc)
		return rc;
	rc = guest_set_namespace(g, e->be.fd, 1, e->lba_shift, 0, &e->nsze);
	if (rc) {
		snprintf(why, len, "VHOST_NVME_SET_NAMESPACE (%s, %u-byte blocks): %s",
			 e->be.path, e->lbs, strerror(-rc));
		return 1;
	}
	return 0;
}

/* Error fd, features, START, the doorbell mode and every queue pair. */
static int dev_start(struct eng *e, bool tune)
{
	struct guest *g = &e->g;
	__u64 features = 1ull << VHOST_NVME_F_POLL;
	int rc, i;

	must(rc = guest_set_error_fd(g), "VHOST_NVME_SET_ERROR_FD");
	if (rc)
		return rc;
	if (e->state_mode || chance(&e->rng, 50)) {
		must(rc = xioctl(g->fd, VHOST_SET_FEATURES, &features),
		     "VHOST_SET_FEATURES F_POLL");
		if (!rc && tune)
			act_poll(e);
	}
	must(rc = guest_start(g), "VHOST_NVME_START");
	if (rc)
		return rc;
	if (e->shadow) {
		must(rc = set_dbbuf(e), "VHOST_NVME_SET_DBBUF");
		if (rc)
			return rc;
	}
	for (i = 1; i <= NQ; i++) {
		rc = qp_create(e, e->q[i]);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Fast mode's backend: a null_blk of its own that keeps no data and
 * completes each request in the submitting context (irqmode 0), so that
 * the module's own work is most of each command's cost. Without configfs
 * null_blk, nullb0 (memory, slower).
 */
static int fast_backend(struct eng *e)
{
	static const struct nullb_attr attrs[] = {
		{ "size", "1024" },		/* MiB */
		{ "blocksize", "512" },
		{ "memory_backed", "0" },
		{ "irqmode", "0" },
		{ "queue_mode", "2" },
		{ "hw_queue_depth", "1024" },
	};
	char why[192];
	int rc;

	rc = nullb_create(&e->nb, "vnfuzz", attrs, ARRAY_SIZE(attrs), why,
			  sizeof(why));
	if (!rc)
		rc = guest_backend_open_block(&e->be, e->nb.dev);
	if (!rc) {
		e->nodata = true;
		return 0;
	}
	printf("# fast: no null_blk of its own (%s): nullb0, with data\n",
	       rc == 1 ? why : strerror(-rc));
	nullb_remove(&e->nb);
	return guest_backend_open(&e->be, GUEST_BACKEND_NULLB, 0);
}

static int eng_setup(struct eng *e, enum io_kind io,
		     enum guest_backend_kind kind, char *why, size_t len)
{
	struct guest *g = &e->g;
	__u64 fuzz_bytes;
	int rc, i;

	e->state_mode = io == IO_STATE;
	e->fast = io == IO_FAST;
	e->small = io != IO_SQE;
	e->hostile_pct = io == IO_STATE ? 0 : io == IO_FAST ? 50 : 30;
	rng_init(&e->rng, io == IO_STATE ? 2 : io == IO_FAST ? 4 : 1, 0);
	e->r2.memfd = e->r3.memfd = -1;
	g->fd = g->memfd = g->errfd = -1;
	e->be.fd = e->be.io_fd = -1;
	e->tmp = malloc(2u << 20);
	if (!e->tmp)
		return -ENOMEM;
	for (i = 1; i <= NQ; i++) {
		e->q[i] = calloc(1, sizeof(*e->q[i]));
		if (!e->q[i])
			return -ENOMEM;
		e->q[i]->qid = i;
		pthread_spin_init(&e->tt.qlock[i], PTHREAD_PROCESS_PRIVATE);
	}
	pthread_spin_init(&e->tt.plock, PTHREAD_PROCESS_PRIVATE);
	if (e->fast && kind == GUEST_BACKEND_NULLB)
		rc = fast_backend(e);
	else
		rc = guest_backend_open(&e->be, kind, 64ull << 20);
	if (rc) {
		snprintf(why, len, "backend %s: %s", backend_name(kind),
			 strerror(-rc));
		return 1;
	}
	rc = guest_setup(g, MEM_SIZE);
	if (rc) {
		snprintf(why, len, "%s: %s", GUEST_DEV_PATH, strerror(-rc));
		return 1;
	}
	/*
	 * Small transfers (MDTS 16 or 32 KiB; 16 KiB in state mode) keep the
	 * commands of the volume and state modes quick on a debug kernel
	 * under TCG: the sqe mode has the large ones.
	 */
	if (e->fast)
		e->mdts = 2 + rnd_below(&e->rng, 2);
	else if (e->state_mode)
		e->mdts = 2;
	else
		e->mdts = 5 + rnd_below(&e->rng, 4);
	e->dstrd = rnd_below(&e->rng, VHOST_NVME_MAX_DSTRD + 1);
	e->lba_shift = chance(&e->rng, 25) ? 12 : 9;
	e->lbs = 1u << e->lba_shift;
	e->mdts_bytes = GUEST_PAGE_SIZE << e->mdts;
	e->mdts_lbas = e->mdts_bytes >> e->lba_shift;
	rc = dev_config(e, why, len);
	if (rc)
		return rc;
	if ((e->nsze << e->lba_shift) < (24ull << 20)) {
		snprintf(why, len, "backend %s: %llu bytes, want 24 MiB or more",
			 e->be.path, (unsigned long long)e->be.size);
		return 1;
	}
	/* Golden: the last 8 MiB. Fuzz: the first 48 MiB (2), short of it. */
	fuzz_bytes = e->small ? SMALL_FUZZ_BYTES : FUZZ_BYTES;
	e->gold_n = GOLD_BYTES >> e->lba_shift;
	e->gold_first = e->nsze - e->gold_n;
	e->fuzz_lbas = MIN(fuzz_bytes, (e->nsze << e->lba_shift) -
			   2 * GOLD_BYTES) >> e->lba_shift;
	e->scratch_pages = MEM_PAGES - PG_SCRATCH;

	for (i = 1; i <= NQ; i++) {
		memset(pg_ptr(e, PG_CQ(i) - 1), CANARY, GUEST_PAGE_SIZE);
		memset(pg_ptr(e, PG_CQ(i) + 1), CANARY, GUEST_PAGE_SIZE);
	}
	for (i = 0; i <= GSLOTS; i++)
		memset(pg_ptr(e, PG_GCANARY(i)), CANARY, GUEST_PAGE_SIZE);
	for (i = 0; i < GSLOTS; i++)
		e->gslot_free[e->ngslot_free++] = i;
	if (pool_init(&e->pools[POOL_PLAUS], PG_PLAUS, PLAUS_PAGES) ||
	    pool_init(&e->pools[POOL_HPROT], PG_HPROT, HPROT_PAGES) ||
	    pool_init(&e->pools[POOL_HTGT], PG_HTGT, HTGT_PAGES))
		return -ENOMEM;
	/* guest_alloc() must never hand out what we laid out ourselves. */
	g->alloc_next = g->mem_size;
	rc = e->nodata ? 0 : gold_init(e);
	if (rc) {
		violation("writing the golden area to %s: %s", e->be.path,
			  strerror(-rc));
		return rc;
	}
	if (e->state_mode) {
		online_cpus(e->cpus);
		rc = region_map(&e->r2, R2_GPA, R2_SIZE, 0, NULL);
		if (!rc)
			rc = region_map(&e->r3, R3_GPA, R3_SIZE, CANARY, NULL);
		if (rc)
			return rc;
		e->r2.present = true;
		must(rc = set_mem_table(e),
		     "VHOST_SET_MEM_TABLE with region 2");
		if (rc)
			return rc;
	}
	e->shadow = chance(&e->rng, 50);
	rc = dev_start(e, !e->state_mode);
	if (rc)
		return rc;
	if (io == IO_SQE) {
		rc = pthread_create(&e->tt_thread, NULL, toctou_fn, e);
		if (rc) {
			violation("starting the TOCTOU thread: %s", strerror(rc));
			return -rc;
		}
		e->tt_running = true;
	}
	return 0;
}

static void toctou_stop(struct eng *e)
{
	if (!e->tt_running)
		return;
	__atomic_store_n(&e->tt.stop, 1, __ATOMIC_RELEASE);
	pthread_join(e->tt_thread, NULL);
	e->tt_running = false;
}

static void eng_teardown(struct eng *e)
{
	int i;

	toctou_stop(e);
	/* Closing the device stops it and waits for its I/O. */
	wd_begin("closing the device");
	guest_close(&e->g);
	wd_end();
	region_unmap(&e->r2);
	region_unmap(&e->r3);
	guest_backend_close(&e->be);
	nullb_remove(&e->nb);
	nullb_configfs_release();
	for (i = 0; i < NPOOLS; i++)
		free(e->pools[i].stack);
	for (i = 1; i <= NQ; i++)
		free(e->q[i]);
	free(e->gst);
	free(e->gbusy);
	free(e->tmp);
	free(e);
}

static void io_report(struct eng *e)
{
	unsigned int i;
	int q;

	printf("# %s: kinds: flush %llu rw %llu wz %llu dsm %llu; golden w %llu r %llu wz %llu dsm %llu (%llu blocks verified); hostile %llu (%llu must fail)\n",
	       cur.mode, (unsigned long long)e->kinds[K_FLUSH],
	       (unsigned long long)e->kinds[K_FUZZ_RW],
	       (unsigned long long)e->kinds[K_FUZZ_WZ],
	       (unsigned long long)e->kinds[K_FUZZ_DSM],
	       (unsigned long long)e->kinds[K_GOLD_W],
	       (unsigned long long)e->kinds[K_GOLD_R],
	       (unsigned long long)e->kinds[K_GOLD_WZ],
	       (unsigned long long)e->kinds[K_GOLD_DSM],
	       (unsigned long long)e->gold_verified,
	       (unsigned long long)e->kinds[K_HOSTILE],
	       (unsigned long long)e->must_fail);
	printf("# %s: queue pairs created %llu, commands forgotten by delete/reset %llu, TOCTOU rewrites %lu\n",
	       cur.mode, (unsigned long long)e->recreated,
	       (unsigned long long)e->forgotten, e->tt.mutations);
	if (!e->state_mode)
		printf("# %s: bogus doorbells: SQ tail %llu, CQ head %llu, CQ head ahead %llu; error records %llu\n",
		       cur.mode, (unsigned long long)e->bogus[BOGUS_SQ],
		       (unsigned long long)e->bogus[BOGUS_CQ],
		       (unsigned long long)e->bogus[BOGUS_CQ_AHEAD],
		       (unsigned long long)e->bogus_reported);
	else
		for (i = 0; i < ARRAY_SIZE(actions); i++)
			printf("# state: action %-18s %5llu, %7.1f ms each\n",
			       actions[i].name, (unsigned long long)e->act[i],
			       e->act[i] ? e->act_ns[i] / 1e6 / e->act[i] : 0.0);
	for (q = 1; q <= NQ; q++)
		printf("# %s: qid %d: last sizes sq %u cq %u, worker %u\n",
		       cur.mode, q, e->q[q]->sq_entries, e->q[q]->cq_entries,
		       e->q[q]->worker);
}

/* Returns 0, 1 (violations) or 4 (could not run here). */
static int run_io_mode(enum io_kind io, enum guest_backend_kind kind,
		       __u64 seconds)
{
	static const char *const names[] = { "sqe", "fast", "state" };
	struct eng *e = calloc(1, sizeof(*e));
	__u64 deadline = now_ns() + seconds * NS_PER_SEC;
	char why[256] = "";
	int rc, i;

	new_mode(names[io]);
	if (!e) {
		violation("out of memory");
		summary();
		return 1;
	}
	rc = eng_setup(e, io, kind, why, sizeof(why));
	if (rc == 1 && !cur.violations) {
		printf("# %s: SKIP: %s\n", cur.mode, why);
		eng_teardown(e);
		summary();
		printf("ok %d fuzz_%s # SKIP %s\n", test_no, cur.mode, why);
		return 4;
	}
	if (!rc) {
		printf("# %s: seed %llu, backend %s (%s), %llu blocks of %u bytes (fuzz %llu, golden %llu from %llu), mdts %u (%u KiB), dstrd %u, %s doorbells\n",
		       cur.mode, (unsigned long long)opt_seed,
		       backend_name(kind), e->be.path,
		       (unsigned long long)e->nsze, e->lbs,
		       (unsigned long long)e->fuzz_lbas,
		       (unsigned long long)e->gold_n,
		       (unsigned long long)e->gold_first, e->mdts,
		       e->mdts_bytes >> 10, e->dstrd,
		       e->shadow ? "shadow" : "forwarded");
		io_loop(e, deadline);
		drain(e);
		toctou_stop(e);
		for (i = 1; i <= NQ && !e->broken; i++)
			if (e->q[i]->state != Q_NONE)
				qp_destroy(e, e->q[i], true);
		check_memory(e);
		if (!e->broken && !e->nodata)
			gold_final_check(e);
		io_report(e);
	} else if (!cur.violations) {
		violation("setting up: %s", strerror(rc < 0 ? -rc : rc));
	}
	eng_teardown(e);
	summary();
	printf("%sok %d fuzz_%s\n", cur.violations ? "not " : "", test_no,
	       cur.mode);
	return cur.violations ? 1 : 0;
}

/* ==== the ioctl mode ================================================== */

/*
 * Random memory tables only ever name the sacrificial reservation: 16 MiB
 * of memfd the kernel may scribble on (SQEs, CQEs, read data, EventIdx)
 * and 16 MiB of PROT_NONE after it. Any region the kernel could accept
 * lies inside it; everything else in the table is malformed.
 */
#define SAC_GPA		0x100000ull
#define SAC_MAPPED	(16ull << 20)
#define SAC_RESERVED	(32ull << 20)
#define IBUF_SIZE	(64u << 10)
#define NTHREADS	4

struct ictx {
	__u8 *sac;
	int sac_fd;
	struct guest_backend be;
	int be_ro, be_append;
	int pipefd[2], efd, sock[2], closed_fd;
	void *ro_page, *none_page;
	int devfd;		/* the shared fd; __atomic */
	int ownfd;		/* owned by us, for the non-owner tests */
	int stop;
	__u64 cpus[VHOST_NVME_MAX_CPUS / 64];
	__u8 *cbufs;		/* arguments for children, one page each */
};

struct ithr {
	struct ictx *x;
	int idx;
	struct rng rng;
	__u8 *buf;		/* IBUF_SIZE, PROT_NONE page after it */
	int tmp[4], ntmp;
	__u64 seq;
	pthread_t tid;
};

enum ikind {
	IK_NONE, IK_U64, IK_MEM, IK_CONFIG, IK_NS, IK_U32, IK_CQ, IK_SQ,
	IK_QID, IK_DBBUF, IK_DB, IK_STATS, IK_FD, IK_ERR, IK_POLL, IK_AFF,
	IK_COAL, IK_VEC, IK_RAW,
};

struct idesc {
	const char *name;
	unsigned long cmd;
	enum ikind kind;
	bool owner;		/* owner only: -EPERM for anyone else */
};

static const struct idesc idescs[] = {
	{ "VHOST_GET_FEATURES", VHOST_GET_FEATURES, IK_U64, false },
	{ "VHOST_SET_FEATURES", VHOST_SET_FEATURES, IK_U64, false },
	{ "VHOST_SET_OWNER", VHOST_SET_OWNER, IK_NONE, false },
	{ "VHOST_SET_MEM_TABLE", VHOST_SET_MEM_TABLE, IK_MEM, true },
	{ "SET_CONFIG", VHOST_NVME_SET_CONFIG, IK_CONFIG, true },
	{ "SET_NAMESPACE", VHOST_NVME_SET_NAMESPACE, IK_NS, true },
	{ "CLEAR_NAMESPACE", VHOST_NVME_CLEAR_NAMESPACE, IK_U32, true },
	{ "CREATE_CQ", VHOST_NVME_CREATE_CQ, IK_CQ, true },
	{ "DELETE_CQ", VHOST_NVME_DELETE_CQ, IK_QID, true },
	{ "CREATE_SQ", VHOST_NVME_CREATE_SQ, IK_SQ, true },
	{ "DELETE_SQ", VHOST_NVME_DELETE_SQ, IK_QID, true },
	{ "SET_DBBUF", VHOST_NVME_SET_DBBUF, IK_DBBUF, true },
	{ "CLEAR_DBBUF", VHOST_NVME_CLEAR_DBBUF, IK_NONE, true },
	{ "DOORBELL", VHOST_NVME_DOORBELL, IK_DB, true },
	{ "START", VHOST_NVME_START, IK_NONE, true },
	{ "STOP", VHOST_NVME_STOP, IK_NONE, true },
	{ "RESET", VHOST_NVME_RESET, IK_NONE, true },
	{ "GET_QUEUE_STATS", VHOST_NVME_GET_QUEUE_STATS, IK_STATS, true },
	{ "SET_ERROR_FD", VHOST_NVME_SET_ERROR_FD, IK_FD, true },
	{ "GET_ERROR", VHOST_NVME_GET_ERROR, IK_ERR, true },
	{ "SET_POLL", VHOST_NVME_SET_POLL, IK_POLL, true },
	{ "SET_WORKER_AFFINITY", VHOST_NVME_SET_WORKER_AFFINITY, IK_AFF, true },
	{ "SET_COALESCING", VHOST_NVME_SET_COALESCING, IK_COAL, true },
	{ "SET_VECTOR_CONFIG", VHOST_NVME_SET_VECTOR_CONFIG, IK_VEC, true },
	/* vhost ioctls this device does not implement, and a tty one */
	{ "VHOST_RESET_OWNER", VHOST_RESET_OWNER, IK_NONE, false },
	{ "VHOST_SET_VRING_NUM", VHOST_SET_VRING_NUM, IK_RAW, false },
	{ "VHOST_SET_LOG_BASE", VHOST_SET_LOG_BASE, IK_RAW, false },
	{ "VHOST_GET_VRING_BASE", VHOST_GET_VRING_BASE, IK_RAW, false },
	{ "TCGETS", TCGETS, IK_RAW, false },
};

/*
 * The errnos the UAPI names (and the VFS adds: -ENOTTY, -EBADF for a
 * closed fd). VHOST_SET_MEM_TABLE may also be -E2BIG for too many
 * regions, as vhost's own is: vhost_nvme_ioctl_test accepts that too.
 */
static bool errno_ok(int err, unsigned long cmd)
{
	switch (err) {
	case EINVAL: case EFAULT: case EPERM: case EBUSY: case ENOENT:
	case EEXIST: case ENOTTY: case EBADF: case EOPNOTSUPP: case EAGAIN:
	case ENOMEM: case ETXTBSY: case ENODEV:
		return true;
	case E2BIG:
		return cmd == VHOST_SET_MEM_TABLE;
	default:
		return false;
	}
}

static size_t arg_size(enum ikind k, unsigned long cmd)
{
	switch (k) {
	case IK_NONE:
		return 0;
	case IK_U64:
		return 8;
	case IK_U32:
	case IK_FD:
		return 4;
	case IK_MEM:
		return sizeof(struct vhost_memory);
	case IK_CONFIG:
		return sizeof(struct vhost_nvme_config);
	case IK_NS:
		return sizeof(struct vhost_nvme_namespace);
	case IK_CQ:
		return sizeof(struct vhost_nvme_cq);
	case IK_SQ:
		return sizeof(struct vhost_nvme_sq);
	case IK_QID:
		return sizeof(struct vhost_nvme_queue_id);
	case IK_DBBUF:
		return sizeof(struct vhost_nvme_dbbuf);
	case IK_DB:
		return sizeof(struct vhost_nvme_doorbell);
	case IK_STATS:
		return sizeof(struct vhost_nvme_queue_stats);
	case IK_ERR:
		return sizeof(struct vhost_nvme_error);
	case IK_POLL:
		return sizeof(struct vhost_nvme_poll);
	case IK_AFF:
		return sizeof(struct vhost_nvme_worker_affinity);
	case IK_COAL:
		return sizeof(struct vhost_nvme_coalescing);
	case IK_VEC:
		return sizeof(struct vhost_nvme_vector_config);
	default:
		return _IOC_SIZE(cmd) ? _IOC_SIZE(cmd) : 64;
	}
}

static __u16 pick_qid(struct rng *r)
{
	static const __u16 v[] = { 0, 1, 1, 2, 3, 4, 5, 8, 16, 127, 128, 129,
				   0xffff };

	return chance(r, 90) ? v[rnd_below(r, ARRAY_SIZE(v))] : rnd(r);
}

static __u32 pick_entries(struct rng *r)
{
	static const __u32 v[] = { 0, 1, 2, 3, 16, 64, 256, 1024, 65535,
				   65536, 65537, 1u << 20, 0xffffffff };

	return chance(r, 90) ? v[rnd_below(r, ARRAY_SIZE(v))] : rnd(r);
}

static __u64 pick_gpa(struct rng *r)
{
	switch (rnd_below(r, 10)) {
	case 0:
		return 0;
	case 1:
		return SAC_GPA + ((__u64)rnd_below(r, SAC_MAPPED >> 12) << 12);
	case 2:
		return SAC_GPA + 8;
	case 3:
		return SAC_GPA + 2048;
	case 4:
		return SAC_GPA + SAC_MAPPED - GUEST_PAGE_SIZE;
	case 5:
		return SAC_GPA + SAC_MAPPED;
	case 6:
		return ~0ull << GUEST_PAGE_SHIFT;
	case 7:
		return rnd(r) & ~0xfffull;
	case 8:
		return rnd(r);
	default:
		return SAC_GPA;
	}
}

/* An fd where an eventfd is expected: one, or anything but. */
static int pick_fd(struct ithr *t)
{
	struct ictx *x = t->x;
	struct rng *r = &t->rng;
	int fd;

	switch (rnd_below(r, 13)) {
	case 0:
		return -1;
	case 1:
		return -2;
	case 2:
	case 3:
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd >= 0 && t->ntmp < (int)ARRAY_SIZE(t->tmp))
			t->tmp[t->ntmp++] = fd;
		else if (fd >= 0)
			close(fd);
		return fd;
	case 4:
		return x->efd;
	case 5:
		return x->pipefd[0];
	case 6:
		return x->be.fd;
	case 7:
		return __atomic_load_n(&x->devfd, __ATOMIC_RELAXED);
	case 8:
		return x->closed_fd;
	case 9:
		return x->sock[0];
	case 10:
		return 0x7fffffff;
	default:
		return rnd(r) & 0x3ff;	/* whatever that is now */
	}
}

/*
 * A namespace backend: only fds whose file we do not mind the kernel
 * writing - the test file, in every open mode - or that it must refuse.
 */
static int pick_ns_fd(struct ithr *t)
{
	struct ictx *x = t->x;
	int v[] = { x->be.fd, x->be.fd, x->be_ro, x->be_append, x->efd,
		    x->pipefd[0], x->closed_fd, -1,
		    __atomic_load_n(&x->devfd, __ATOMIC_RELAXED), x->sock[0],
		    0x7fffffff };

	return v[rnd_below(&t->rng, ARRAY_SIZE(v))];
}

static size_t gen_memtable(struct ithr *t, struct vhost_memory *m)
{
	static const __u32 counts[] = { 0, 1, 1, 1, 1, 2, 2, 3, 8, 509, 510,
					511, 0x80000000u, 0xffffffffu };
	struct rng *r = &t->rng;
	__u32 cap = (IBUF_SIZE - sizeof(*m)) / sizeof(m->regions[0]), i, n;

	n = chance(r, 85) ? counts[rnd_below(r, ARRAY_SIZE(counts))] :
	    rnd_below(r, 600);
	m->nregions = n;
	m->padding = chance(r, 90) ? 0 : rnd(r);
	for (i = 0; i < MIN(n, cap); i++) {
		struct vhost_memory_region *g = &m->regions[i];
		__u64 off = (__u64)rnd_below(r, SAC_RESERVED >> 12) << 12;
		__u64 room = SAC_RESERVED - off;

		g->memory_size = chance(r, 50) ? room :
			(__u64)(1 + rnd_below(r, room >> 12)) << 12;
		g->userspace_addr = (uintptr_t)t->x->sac + off;
		switch (rnd_below(r, 5)) {
		case 0:
			g->guest_phys_addr = SAC_GPA;
			break;
		case 1:		/* disjoint from the others */
			g->guest_phys_addr = SAC_GPA + i * SAC_RESERVED;
			break;
		case 2:		/* overlaps the one before by a page */
			g->guest_phys_addr = SAC_GPA + i * SAC_RESERVED -
					     GUEST_PAGE_SIZE;
			break;
		case 3:
			g->guest_phys_addr = ~0ull << GUEST_PAGE_SHIFT;
			break;
		default:
			g->guest_phys_addr = rnd(r) & ~0xfffull;
			break;
		}
		g->flags_padding = chance(r, 95) ? 0 : rnd(r);
		/* And now and then something wrong with it. */
		switch (rnd_below(r, 12)) {
		case 0:
			g->memory_size = 0;
			break;
		case 1:
			g->memory_size |= 0x800;
			break;
		case 2:
			g->userspace_addr += 2048;
			break;
		case 3:		/* a kernel address */
			g->userspace_addr = 0xffff888000000000ull;
			break;
		case 4:		/* past any user address */
			g->memory_size = 1ull << 63;
			break;
		case 5:		/* wraps */
			g->memory_size = ~0ull << GUEST_PAGE_SHIFT;
			break;
		case 6:
			g->guest_phys_addr |= 0x200;
			break;
		default:
			break;
		}
	}
	return sizeof(*m) + MIN(n, cap) * sizeof(m->regions[0]);
}

/* Plausible values in a struct already full of random bytes. */
static void smart_fill(struct ithr *t, enum ikind k, __u8 *b, bool zres)
{
	static const __u64 feats[] = { VHOST_NVME_FEATURES, 0,
				       1ull << VHOST_NVME_F_MIGRATION,
				       1ull << 63, ~0ull };
	static const __u32 polls[] = { 0, 1, 50, VHOST_NVME_MAX_POLL_US,
				       VHOST_NVME_MAX_POLL_US + 1,
				       VHOST_NVME_POLL_DEFAULT - 1,
				       VHOST_NVME_POLL_DEFAULT };
	struct rng *r = &t->rng;
	__u64 f;
	__u32 u;
	__s32 fd;

	switch (k) {
	case IK_U64:
		f = chance(r, 85) ? feats[rnd_below(r, ARRAY_SIZE(feats))] :
		    rnd(r);
		memcpy(b, &f, sizeof(f));
		break;
	case IK_U32:
		u = chance(r, 80) ? rnd_below(r, 18) : rnd(r);
		memcpy(b, &u, sizeof(u));
		break;
	case IK_FD:
		fd = pick_fd(t);
		memcpy(b, &fd, sizeof(fd));
		break;
	case IK_MEM:
		gen_memtable(t, (struct vhost_memory *)b);
		break;
	case IK_CONFIG: {
		struct vhost_nvme_config *c = (void *)b;

		c->mdts = rnd_below(r, 10);
		c->dstrd = rnd_below(r, 6);
		c->max_queues = pick_qid(r);
		if (zres)
			memset(c->reserved, 0, sizeof(c->reserved));
		break;
	}
	case IK_NS: {
		struct vhost_nvme_namespace *ns = (void *)b;

		ns->fd = pick_ns_fd(t);
		ns->nsid = chance(r, 80) ? rnd_below(r, 18) : rnd(r);
		ns->lba_shift = 8 + rnd_below(r, 6);
		ns->flags = chance(r, 80) ? rnd_below(r, 3) : rnd(r);
		if (zres)
			memset(ns->reserved, 0, sizeof(ns->reserved));
		break;
	}
	case IK_CQ: {
		struct vhost_nvme_cq *cq = (void *)b;

		cq->qid = pick_qid(r);
		cq->vector = rnd(r);
		cq->entries = pick_entries(r);
		cq->gpa = pick_gpa(r);
		cq->flags = chance(r, 80) ? rnd_below(r, 3) : rnd(r);
		cq->irqfd = pick_fd(t);
		cq->kickfd = chance(r, 50) ? -1 : pick_fd(t);
		if (zres)
			memset(cq->reserved, 0, sizeof(cq->reserved));
		break;
	}
	case IK_SQ: {
		struct vhost_nvme_sq *sq = (void *)b;

		sq->qid = pick_qid(r);
		sq->cqid = pick_qid(r);
		sq->entries = pick_entries(r);
		sq->gpa = pick_gpa(r);
		sq->kickfd = chance(r, 30) ? -1 : pick_fd(t);
		sq->worker = chance(r, 90) ? rnd_below(r, 17) : rnd(r);
		sq->flags = chance(r, 80) ? 0 : rnd(r);
		if (zres)
			memset(sq->reserved, 0, sizeof(sq->reserved));
		break;
	}
	case IK_QID:
	case IK_STATS: {
		struct vhost_nvme_queue_id *id = (void *)b;

		id->qid = pick_qid(r);
		if (zres)
			memset(id->reserved, 0, sizeof(id->reserved));
		break;
	}
	case IK_DBBUF: {
		struct vhost_nvme_dbbuf *d = (void *)b;

		d->dbs_gpa = pick_gpa(r);
		d->eis_gpa = chance(r, 10) ? d->dbs_gpa : pick_gpa(r);
		if (zres)
			memset(d->reserved, 0, sizeof(d->reserved));
		break;
	}
	case IK_DB: {
		struct vhost_nvme_doorbell *d = (void *)b;

		d->qid = pick_qid(r);
		d->cq = chance(r, 90) ? rnd_below(r, 3) : rnd(r);
		d->value = chance(r, 70) ? rnd_below(r, 300) : pick_entries(r);
		if (zres)
			d->reserved0 = 0;
		break;
	}
	case IK_POLL: {
		struct vhost_nvme_poll *p = (void *)b;

		p->poll_us = chance(r, 85) ?
			     polls[rnd_below(r, ARRAY_SIZE(polls))] : rnd(r);
		if (zres)
			memset(p->reserved, 0, sizeof(p->reserved));
		break;
	}
	case IK_AFF: {
		struct vhost_nvme_worker_affinity *a = (void *)b;

		a->worker = chance(r, 90) ? rnd_below(r, 17) : rnd(r);
		switch (rnd_below(r, 4)) {
		case 0:
			memset(a->cpus, 0, sizeof(a->cpus));
			break;
		case 1:		/* a CPU this kernel cannot have */
			memset(a->cpus, 0, sizeof(a->cpus));
			a->cpus[ARRAY_SIZE(a->cpus) - 1] = 1ull << 63;
			break;
		case 2:
			break;	/* random bits */
		default:
			cpu_subset(r, t->x->cpus, a->cpus);
			break;
		}
		if (zres)
			memset(a->reserved0, 0, sizeof(a->reserved0));
		break;
	}
	case IK_COAL: {
		struct vhost_nvme_coalescing *c = (void *)b;

		if (zres) {
			c->reserved0 = 0;
			memset(c->reserved, 0, sizeof(c->reserved));
		}
		break;
	}
	case IK_VEC: {
		struct vhost_nvme_vector_config *v = (void *)b;

		v->vector = chance(r, 80) ?
			    rnd_below(r, VHOST_NVME_MAX_VECTORS + 1) : rnd(r);
		v->flags = chance(r, 80) ? rnd_below(r, 3) : rnd(r);
		if (zres)
			memset(v->reserved, 0, sizeof(v->reserved));
		break;
	}
	default:
		break;
	}
}

/* Where the argument is: mostly our buffer, else a pointer to nowhere. */
static void *pick_ptr(struct ithr *t, size_t size)
{
	switch (rnd_below(&t->rng, 20)) {
	case 0:
		return NULL;
	case 1:
		return (void *)1;
	case 2:
		return (void *)8;
	case 3:
		return (void *)0xffff888000000000ull;	/* kernel's */
	case 4:
		return (void *)0xffffffff81000000ull;
	case 5:
		return t->x->none_page;			/* not mapped */
	case 6:		/* starts mapped, ends in PROT_NONE */
		return t->buf + IBUF_SIZE - (size > 1 ? size / 2 : 1);
	case 7:		/* read-only: the kernel cannot write results */
		return t->x->ro_page;
	default:
		return t->buf;
	}
}

static void one_ioctl(struct ithr *t, int step)
{
	struct ictx *x = t->x;
	struct rng *r = &t->rng;
	const struct idesc *d;
	char name[48], bytes[160];
	enum ikind kind;
	unsigned long cmd;
	size_t size;
	void *arg;
	int fd, rc, err, i;

	if (chance(r, 10)) {
		/* Any number of our ioctl type, in any direction and size. */
		cmd = _IOC(rnd_below(r, 4), VHOST_VIRTIO, rnd(r) & 0xff,
			   rnd(r) & 0x3fff);
		kind = IK_RAW;
		snprintf(name, sizeof(name), "ioctl 0x%08lx", cmd);
	} else {
		d = &idescs[rnd_below(r, ARRAY_SIZE(idescs))];
		cmd = d->cmd;
		kind = d->kind;
		snprintf(name, sizeof(name), "%s", d->name);
	}
	size = arg_size(kind, cmd);
	rnd_fill(r, t->buf, chance(r, 5) ? IBUF_SIZE : 512);
	if (kind == IK_MEM || chance(r, 65))
		smart_fill(t, kind, t->buf, chance(r, 50));
	arg = pick_ptr(t, size);
	fd = __atomic_load_n(&x->devfd, __ATOMIC_ACQUIRE);
	wd_begin("ioctl thread %d: %s on fd %d", t->idx, name, fd);
	rc = ioctl(fd, cmd, arg);
	err = errno;
	wd_end();
	__atomic_fetch_add(&cur.ioctls, 1, __ATOMIC_RELAXED);
	if (rc > 0 || (rc < 0 && !errno_ok(err, cmd)))
		violation("ioctl thread %d sequence %llu step %d: %s (0x%08lx) on fd %d, arg %p: returned %d, errno %d (%s); arg %s",
			  t->idx, (unsigned long long)t->seq, step, name, cmd,
			  fd, arg, rc, rc < 0 ? err : 0,
			  rc < 0 ? strerror(err) : "-",
			  arg == t->buf && size ? hex(t->buf, MIN(size, 48u),
						      bytes, sizeof(bytes)) : "-");
	for (i = 0; i < t->ntmp; i++)
		close(t->tmp[i]);
	t->ntmp = 0;
}

static void *ithr_fn(void *arg)
{
	struct ithr *t = arg;
	struct ictx *x = t->x;
	int i, n;

	while (!__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE)) {
		if (max_sequences && max_sequences <=
		    __atomic_load_n(&cur.sequences, __ATOMIC_RELAXED))
			break;
		n = 1 + rnd_below(&t->rng, 20);
		for (i = 0; i < n; i++)
			one_ioctl(t, i);
		t->seq++;
		__atomic_fetch_add(&cur.sequences, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * Close and reopen the shared fd under the ioctl threads: mostly by
 * dup2() over it (the number never refers to anything else), sometimes by
 * close() and open() with a gap, where an ioctl meets a closed fd or
 * whatever took the number.
 */
static void *closer_fn(void *arg)
{
	struct ictx *x = arg;
	struct rng r;
	int old, nfd;

	rng_init(&r, 9, 0);
	while (!__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE)) {
		guest_msleep(1 + rnd_below(&r, 20));
		old = __atomic_load_n(&x->devfd, __ATOMIC_ACQUIRE);
		nfd = open(GUEST_DEV_PATH, O_RDWR | O_CLOEXEC);
		if (nfd < 0) {
			violation("reopening %s: %s", GUEST_DEV_PATH,
				  strerror(errno));
			break;
		}
		wd_begin("closer thread: releasing the old device");
		if (chance(&r, 70)) {
			/* dup2 releases the file that was there. */
			if (dup2(nfd, old) >= 0) {
				close(nfd);
				nfd = old;
			}
		} else {
			__atomic_store_n(&x->devfd, -1, __ATOMIC_RELEASE);
			close(old);
			usleep(rnd_below(&r, 300));
		}
		wd_end();
		__atomic_store_n(&x->devfd, nfd, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* ---- other processes: a forked child, an fd passed to another ------- */

struct cres {
	__u32 n, bad;
	struct {
		__u32 idx;
		__s32 rc, err;
	} b[4];
};

/*
 * In a child (async-signal-safe only): every owner ioctl on @fd, whose
 * owner is our parent, must be -EPERM, VHOST_SET_OWNER -EBUSY and
 * VHOST_GET_FEATURES work; the arguments are valid pointers to random
 * bytes, so the caller being wrong is the only thing certainly wrong.
 */
static void child_checks(int fd, __u8 *bufs, struct cres *res)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(idescs); i++) {
		const struct idesc *d = &idescs[i];
		int want, rc, err;

		if (d->owner)
			want = EPERM;
		else if (d->cmd == VHOST_SET_OWNER)
			want = EBUSY;
		else if (d->cmd == VHOST_GET_FEATURES)
			want = 0;
		else
			continue;
		rc = ioctl(fd, d->cmd, bufs + i * GUEST_PAGE_SIZE);
		err = rc < 0 ? errno : 0;
		res->n++;
		if (want ? rc == -1 && err == want : rc == 0)
			continue;
		if (res->bad < ARRAY_SIZE(res->b)) {
			res->b[res->bad].idx = i;
			res->b[res->bad].rc = rc;
			res->b[res->bad].err = err;
		}
		res->bad++;
	}
}

static void report_cres(const char *who, const struct cres *res, bool got)
{
	unsigned int i;

	if (!got) {
		violation("%s: no result from the child", who);
		return;
	}
	for (i = 0; i < res->bad && i < ARRAY_SIZE(res->b); i++) {
		const struct idesc *d;

		d = &idescs[res->b[i].idx % ARRAY_SIZE(idescs)];

		violation("%s: %s returned %d errno %d (%s), want %s", who,
			  d->name, res->b[i].rc, res->b[i].err,
			  strerror(res->b[i].err),
			  d->owner ? "EPERM" : d->cmd == VHOST_SET_OWNER ?
			  "EBUSY" : "success");
	}
}

static bool read_full(int fd, void *buf, size_t len, const char *what)
{
	struct pollfd p = { fd, POLLIN, 0 };
	size_t done = 0;
	ssize_t n;

	wd_begin("waiting for %s", what);
	while (done < len) {
		if (poll(&p, 1, 9000) <= 0)
			break;
		n = read(fd, (char *)buf + done, len - done);
		if (n <= 0)
			break;
		done += n;
	}
	wd_end();
	return done == len;
}

static int ownfd_setup(struct ictx *x)
{
	struct vhost_nvme_config c = { .mdts = 5, .max_queues = 4 };
	struct vhost_memory *m;
	int fd, rc;

	m = calloc(1, sizeof(*m) + sizeof(m->regions[0]));
	if (!m)
		return -ENOMEM;
	m->nregions = 1;
	m->regions[0].guest_phys_addr = SAC_GPA;
	m->regions[0].memory_size = SAC_MAPPED;
	m->regions[0].userspace_addr = (uintptr_t)x->sac;
	fd = open(GUEST_DEV_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		free(m);
		return rc;
	}
	rc = xioctl(fd, VHOST_SET_OWNER, NULL);
	if (!rc)
		rc = xioctl(fd, VHOST_SET_MEM_TABLE, m);
	if (!rc)
		rc = xioctl(fd, VHOST_NVME_SET_CONFIG, &c);
	free(m);
	if (rc) {
		violation("setting up an owned device: %s", strerror(-rc));
		close(fd);
		return rc;
	}
	x->ownfd = fd;
	return 0;
}

/* A forked child inherits the owned fd (and the shared one). */
static void fork_test(struct ictx *x, struct rng *r)
{
	struct cres res = { 0 };
	int p[2], devfd, i;
	pid_t pid;
	bool got;

	if (x->ownfd < 0)
		return;
	rnd_fill(r, x->cbufs, ARRAY_SIZE(idescs) * GUEST_PAGE_SIZE);
	if (pipe2(p, O_CLOEXEC))
		return;
	devfd = __atomic_load_n(&x->devfd, __ATOMIC_ACQUIRE);
	pid = fork_kid();
	if (pid == 0) {
		close(p[0]);
		child_checks(x->ownfd, x->cbufs, &res);
		/* The shared fd's file: no errno outside the list. */
		for (i = 0; i < (int)ARRAY_SIZE(idescs); i++) {
			unsigned long cmd = idescs[i].cmd;
			int rc = ioctl(devfd, cmd,
				       x->cbufs + i * GUEST_PAGE_SIZE);

			if (rc > 0 || (rc < 0 && !errno_ok(errno, cmd))) {
				if (res.bad < ARRAY_SIZE(res.b)) {
					res.b[res.bad].idx = i;
					res.b[res.bad].rc = rc;
					res.b[res.bad].err = errno;
				}
				res.bad++;
			}
		}
		ignore(write(p[1], &res, sizeof(res)));
		_exit(0);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return;
	}
	got = read_full(p[0], &res, sizeof(res), "the forked child's results");
	close(p[0]);
	wait_kid(pid, "the forked non-owner");
	report_cres("forked child, not the owner", &res, got);
}

/*
 * The owned fd, sent with SCM_RIGHTS to a child that closed every fd it
 * inherited. With @last the parent closes its copy first: the child's
 * close is then the release, in a process that never owned the device.
 */
static void scm_test(struct ictx *x, struct rng *r, bool last)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct cres res = { 0 };
	struct iovec iov;
	struct msghdr mh;
	struct cmsghdr *cm;
	int sv[2], fd;
	char c = 'f';
	pid_t pid;
	bool got;

	if (x->ownfd < 0)
		return;
	rnd_fill(r, x->cbufs, ARRAY_SIZE(idescs) * GUEST_PAGE_SIZE);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return;
	pid = fork_kid();
	if (pid == 0) {
		for (fd = 3; fd < 1024; fd++)
			if (fd != sv[1])
				close(fd);
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = &c;
		iov.iov_len = 1;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		fd = -1;
		if (recvmsg(sv[1], &mh, 0) == 1) {
			cm = CMSG_FIRSTHDR(&mh);
			if (cm && cm->cmsg_type == SCM_RIGHTS)
				memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		}
		if (fd >= 0)
			child_checks(fd, x->cbufs, &res);
		else
			res.bad = 1000;
		ignore(write(sv[1], &res, sizeof(res)));
		close(fd);
		_exit(0);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return;
	}
	memset(&mh, 0, sizeof(mh));
	memset(cbuf, 0, sizeof(cbuf));
	iov.iov_base = &c;
	iov.iov_len = 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &x->ownfd, sizeof(int));
	if (sendmsg(sv[0], &mh, 0) != 1)
		violation("sending the device fd with SCM_RIGHTS: %s",
			  strerror(errno));
	if (last) {
		close(x->ownfd);
		x->ownfd = -1;
	}
	got = read_full(sv[0], &res, sizeof(res), "the SCM_RIGHTS child");
	close(sv[0]);
	wait_kid(pid, "the SCM_RIGHTS child");
	if (got && res.bad == 1000)
		violation("the SCM_RIGHTS child received no fd");
	else
		report_cres(last ? "fd received with SCM_RIGHTS, the last reference" :
			    "fd received with SCM_RIGHTS", &res, got);
	if (x->ownfd < 0)
		ownfd_setup(x);
}

/*
 * The kill test's owner: its own device, two queue pairs kept full of
 * reads, writes, write zeroes and flushes, until SIGKILL.
 */
static void __attribute__((noreturn)) owner_child(int be_fd, int ready,
						  int k)
{
	struct guest g;
	struct guest_sq *sq[2];
	struct guest_buf b;
	struct nvme_sqe cmd;
	__u64 nsze = 0, i = 0;
	bool told = false;
	int q;

	if (guest_setup(&g, 8u << 20) || guest_set_config(&g, 5, 0, 4) ||
	    guest_set_namespace(&g, be_fd, 1, 9, 0, &nsze) ||
	    guest_start(&g) || (k & 1 && guest_set_dbbuf(&g)) ||
	    guest_create_qpair(&g, 1, 64, 64, 0, &sq[0]) ||
	    guest_create_qpair(&g, 2, 32, 16, 1, &sq[1]) ||
	    guest_buf_alloc(&g, &b, 0, 64 << 10, true) || nsze < 4096)
		_exit(2);
	for (;;) {
		for (q = 0; q < 2; q++) {
			while (guest_sq_space(sq[q]) > 0) {
				__u64 slba = (i * 128) % (nsze - 2048);

				switch (i++ % 6) {
				case 0:
					nvme_sqe_write_zeroes(&cmd, 1, slba,
							      2048, false);
					break;
				case 1:
					nvme_sqe_flush(&cmd, 1);
					break;
				default:
					nvme_sqe_rw(&cmd, i & 1 ?
						    NVME_CMD_READ :
						    NVME_CMD_WRITE, 1, slba,
						    128, 0);
					guest_prp_build(&g, &b, 0, &cmd);
					break;
				}
				guest_sq_submit(sq[q], &cmd);
			}
			guest_sq_ring(sq[q]);
		}
		if (!told) {
			told = true;
			ignore(write(ready, "r", 1));
		}
		for (q = 0; q < 2; q++) {
			guest_cq_reap(sq[q]->cq, NULL, 64);
			guest_cq_ring(sq[q]->cq);
		}
	}
}

/*
 * SIGKILL an owner with I/O in flight and its device open: its exit
 * releases the device, and the module's reference count comes back.
 */
static void kill_test(int be_fd, int k, long ref0, struct rng *r)
{
	int p[2], status;
	long ref = -1;
	char c;
	pid_t pid;
	int i;

	if (pipe2(p, O_CLOEXEC))
		return;
	pid = fork_kid();
	if (pid == 0) {
		close(p[0]);
		owner_child(be_fd, p[1], k);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return;
	}
	if (!read_full(p[0], &c, 1, "the owner child to start its I/O")) {
		kill(pid, SIGKILL);
		status = wait_kid(pid, "the owner child");
		violation("kill test %d: the owner child did not get its I/O going (status 0x%x)",
			  k, status);
		close(p[0]);
		return;
	}
	close(p[0]);
	usleep(rnd_below(r, 20000));
	kill(pid, SIGKILL);
	wait_kid(pid, "the owner killed with I/O in flight");
	wd_begin("the module refcount after killing an owner");
	for (i = 0; i < 200; i++) {
		ref = guest_module_refcnt();
		if (ref == ref0)
			break;
		guest_msleep(50);
	}
	wd_end();
	if (ref != ref0)
		violation("kill test %d: owner killed with I/O in flight: %s is %ld 10 s later, was %ld",
			  k, GUEST_REFCNT_PATH, ref, ref0);
}

static void refcnt_settles(long ref0, const char *when)
{
	long ref = -1;
	int i;

	if (ref0 < 0)
		return;
	wd_begin("the module refcount %s", when);
	for (i = 0; i < 200; i++) {
		ref = guest_module_refcnt();
		if (ref == ref0)
			break;
		guest_msleep(50);
	}
	wd_end();
	if (ref != ref0)
		violation("%s: %s is %ld, was %ld before", when,
			  GUEST_REFCNT_PATH, ref, ref0);
}

static int ictx_setup(struct ictx *x)
{
	struct rng r;
	char path[64];
	__u32 i;
	int rc;

	x->sac_fd = x->efd = x->closed_fd = x->be_ro = x->be_append = -1;
	x->pipefd[0] = x->pipefd[1] = x->sock[0] = x->sock[1] = -1;
	x->devfd = x->ownfd = -1;
	x->be.fd = x->be.io_fd = -1;
	x->sac = mmap(NULL, SAC_RESERVED, PROT_NONE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (x->sac == MAP_FAILED) {
		x->sac = NULL;
		return -errno;
	}
	x->sac_fd = memfd_create("vhost-nvme-fuzz-sacrificial", MFD_CLOEXEC);
	if (x->sac_fd < 0 || ftruncate(x->sac_fd, SAC_MAPPED) ||
	    mmap(x->sac, SAC_MAPPED, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, x->sac_fd, 0) == MAP_FAILED)
		return -errno;
	x->none_page = x->sac + SAC_MAPPED;
	/*
	 * Junk for queues placed anywhere in it, and at its start SQEs a
	 * worker could actually run against the test file.
	 */
	rng_init(&r, 11, 0);
	rnd_fill(&r, x->sac, SAC_MAPPED);
	for (i = 0; i < (256u << 10) / 64; i++) {
		struct nvme_sqe *s = (struct nvme_sqe *)x->sac + i;
		static const __u8 ops[] = { NVME_CMD_READ, NVME_CMD_WRITE,
					    NVME_CMD_FLUSH,
					    NVME_CMD_WRITE_ZEROES };

		if (!chance(&r, 30))
			continue;
		nvme_sqe_rw(s, ops[rnd_below(&r, ARRAY_SIZE(ops))], 1,
			    rnd_below(&r, 4096), 1 + rnd_below(&r, 16), 0);
		nvme_sqe_set_prp(s,
				 SAC_GPA + ((__u64)rnd_below(&r, 4096) << 12),
				 SAC_GPA + ((__u64)rnd_below(&r, 4096) << 12));
		s->cid = rnd(&r);
	}
	x->ro_page = mmap(NULL, GUEST_PAGE_SIZE, PROT_READ,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	x->cbufs = mmap(NULL, ARRAY_SIZE(idescs) * GUEST_PAGE_SIZE,
			PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	if (x->ro_page == MAP_FAILED || x->cbufs == MAP_FAILED)
		return -ENOMEM;
	rc = guest_backend_open(&x->be, GUEST_BACKEND_FILE, 4u << 20);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", x->be.fd);
	x->be_ro = open(path, O_RDONLY | O_CLOEXEC);
	x->be_append = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (pipe2(x->pipefd, O_CLOEXEC) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x->sock))
		return -errno;
	x->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	x->closed_fd = eventfd(0, EFD_CLOEXEC);
	close(x->closed_fd);
	online_cpus(x->cpus);
	x->devfd = open(GUEST_DEV_PATH, O_RDWR | O_CLOEXEC);
	if (x->devfd < 0)
		return -errno;
	return ownfd_setup(x);
}

static void ictx_teardown(struct ictx *x)
{
	int fds[] = { x->devfd, x->ownfd, x->be_ro, x->be_append,
		      x->pipefd[0], x->pipefd[1], x->efd, x->sock[0],
		      x->sock[1], x->sac_fd };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	x->devfd = x->ownfd = -1;
	guest_backend_close(&x->be);
	if (x->sac)
		munmap(x->sac, SAC_RESERVED);
	if (x->ro_page && x->ro_page != MAP_FAILED)
		munmap(x->ro_page, GUEST_PAGE_SIZE);
	if (x->cbufs && x->cbufs != MAP_FAILED)
		munmap(x->cbufs, ARRAY_SIZE(idescs) * GUEST_PAGE_SIZE);
}

static int run_ioctl_mode(enum guest_backend_kind kind, __u64 seconds)
{
	__u64 start = now_ns(), end = start + seconds * NS_PER_SEC;
	/* Time left at the end for the kill tests. */
	__u64 reserve = MIN(3 * NS_PER_SEC, seconds * NS_PER_SEC / 4);
	struct ithr th[NTHREADS];
	struct ictx x = { 0 };
	struct guest_backend kbe;
	pthread_t closer;
	long ref0, ref_start;
	struct rng r;
	int rc, i, k, nthr = 0;
	bool closer_up = false;

	new_mode("ioctl");
	memset(th, 0, sizeof(th));
	rng_init(&r, 3, 0);
	ref_start = guest_module_refcnt();
	if (ref_start < 0)
		printf("# ioctl: %s unreadable: refcount checks skipped\n",
		       GUEST_REFCNT_PATH);
	rc = ictx_setup(&x);
	if (rc) {
		if (!cur.violations)
			violation("setting up: %s", strerror(-rc));
		goto out;
	}
	for (i = 0; i < NTHREADS; i++) {
		th[i].x = &x;
		th[i].idx = i;
		rng_init(&th[i].rng, 20 + i, 0);
		th[i].buf = mmap(NULL, IBUF_SIZE + GUEST_PAGE_SIZE,
				 PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (th[i].buf == MAP_FAILED ||
		    mprotect(th[i].buf + IBUF_SIZE, GUEST_PAGE_SIZE,
			     PROT_NONE)) {
			violation("thread buffers: %s", strerror(errno));
			th[i].buf = NULL;
			break;
		}
		if (pthread_create(&th[i].tid, NULL, ithr_fn, &th[i]))
			break;
		nthr++;
	}
	closer_up = !pthread_create(&closer, NULL, closer_fn, &x);
	/* Meanwhile: non-owner processes, now and then. */
	for (k = 0; now_ns() + reserve < end; k++) {
		guest_msleep(250);
		if (max_sequences && max_sequences <=
		    __atomic_load_n(&cur.sequences, __ATOMIC_RELAXED))
			break;
		switch (k % 4) {
		case 0:
			fork_test(&x, &r);
			break;
		case 1:
			scm_test(&x, &r, false);
			break;
		case 2:
			scm_test(&x, &r, true);
			break;
		default:
			break;
		}
	}
	__atomic_store_n(&x.stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < nthr; i++)
		pthread_join(th[i].tid, NULL);
	if (closer_up)
		pthread_join(closer, NULL);
	/* No vhost-nvme fd of ours is open from here on. */
	if (x.devfd >= 0)
		close(x.devfd);
	if (x.ownfd >= 0)
		close(x.ownfd);
	x.devfd = x.ownfd = -1;
	refcnt_settles(ref_start, "after the ioctl threads closed theirs");
	ref0 = guest_module_refcnt();
	if (ref0 >= 0) {
		/* The owner's I/O goes to the backend asked for, if there. */
		if (guest_backend_open(&kbe, kind, 64ull << 20))
			kbe.fd = -1;
		for (k = 0; k < 3; k++)
			kill_test(kbe.fd >= 0 ? kbe.fd : x.be.fd, k, ref0, &r);
		if (kbe.fd >= 0)
			guest_backend_close(&kbe);
	}
out:
	for (i = 0; i < NTHREADS; i++)
		if (th[i].buf)
			munmap(th[i].buf, IBUF_SIZE + GUEST_PAGE_SIZE);
	ictx_teardown(&x);
	refcnt_settles(ref_start, "at the end of the ioctl mode");
	summary();
	printf("%sok %d fuzz_ioctl\n", cur.violations ? "not " : "", test_no);
	return cur.violations ? 1 : 0;
}

/* ==== main ============================================================ */

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--mode sqe|fast|state|ioctl|all] [--seed N] [--seconds S]\n"
		"       [--commands N] [--actions N] [--sequences N]\n"
		"       [--backend brd|file|null_blk]\n", prog);
	exit(2);
}

#define NMODES	4
static const char *const mode_names[NMODES] = {
	"sqe", "fast", "state", "ioctl",
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "commands", required_argument, NULL, 'n' },
		{ "actions", required_argument, NULL, 'a' },
		{ "sequences", required_argument, NULL, 'q' },
		{ "backend", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* % of --seconds per mode in --mode all */
	static const unsigned int all_share[NMODES] = { 40, 20, 20, 20 };
	/*
	 * null_blk, not brd: brd of 6.12 frees a page on discard with no
	 * protection against a write to it in flight (BUG_ON in
	 * copy_to_brd(); brd's discard was reworked upstream in 2025), which
	 * legal concurrent DSM and writes reach. --backend brd shows it.
	 */
	enum guest_backend_kind kind = GUEST_BACKEND_NULLB;
	const char *mode = "all", *bname = "null_blk";
	bool run[NMODES] = { false };
	bool any_fail = false, any_ran = false;
	__u64 seconds = 60, share[NMODES], given = 0;
	pthread_t wd;
	int c, i, n = 0, rc;

	while ((c = getopt_long(argc, argv, "m:s:t:n:a:q:b:h", opts,
				NULL)) != -1) {
		switch (c) {
		case 'm':
			mode = optarg;
			break;
		case 's':
			opt_seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			seconds = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			max_commands = strtoull(optarg, NULL, 0);
			break;
		case 'a':
			max_actions = strtoull(optarg, NULL, 0);
			break;
		case 'q':
			max_sequences = strtoull(optarg, NULL, 0);
			break;
		case 'b':
			bname = optarg;
			if (!strcmp(optarg, "brd"))
				kind = GUEST_BACKEND_BRD;
			else if (!strcmp(optarg, "file"))
				kind = GUEST_BACKEND_FILE;
			else if (!strcmp(optarg, "null_blk"))
				kind = GUEST_BACKEND_NULLB;
			else
				usage(argv[0]);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind < argc || !seconds)
		usage(argv[0]);
	for (i = 0; i < NMODES; i++)
		run[i] = !strcmp(mode, "all") || !strcmp(mode, mode_names[i]);
	for (i = 0; i < NMODES; i++) {
		if (!strcmp(mode, "all")) {
			share[i] = i < NMODES - 1 ?
				   seconds * all_share[i] / 100 :
				   seconds - given;
			given += share[i];
		} else {
			share[i] = seconds;
		}
		if (!share[i])
			share[i] = 1;
		n += run[i];
	}
	if (!n)
		usage(argv[0]);

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	printf("TAP version 13\n1..%d\n", n);
	printf("# vhost_nvme_fuzz --mode %s --seed %llu --seconds %llu --commands %llu --actions %llu --sequences %llu --backend %s\n",
	       mode, (unsigned long long)opt_seed, (unsigned long long)seconds,
	       (unsigned long long)max_commands,
	       (unsigned long long)max_actions,
	       (unsigned long long)max_sequences, bname);
	if (access(GUEST_DEV_PATH, R_OK | W_OK)) {
		printf("# SKIP: %s: %s (vhost_nvme not loaded, or not root)\n",
		       GUEST_DEV_PATH, strerror(errno));
		for (i = 0; i < NMODES; i++) {
			if (!run[i])
				continue;
			new_mode(mode_names[i]);
			summary();
			printf("ok %d fuzz_%s # SKIP no %s\n", test_no, cur.mode,
			       GUEST_DEV_PATH);
		}
		return 4;
	}
	wd_deadline = now_ns() + (seconds + 25) * NS_PER_SEC;
	if (pthread_create(&wd, NULL, wd_fn, NULL)) {
		printf("# cannot start the watchdog\n");
		return 1;
	}
	for (i = 0; i < NMODES; i++) {
		if (!run[i])
			continue;
		if (i < NMODES - 1)
			rc = run_io_mode((enum io_kind)i, kind, share[i]);
		else
			rc = run_ioctl_mode(kind, share[i]);
		any_fail |= rc == 1;
		any_ran |= rc != 4;
	}
	__atomic_store_n(&wd_quit, 1, __ATOMIC_RELEASE);
	pthread_join(wd, NULL);
	kill_kids();
	return any_fail ? 1 : any_ran ? 0 : 4;
}
