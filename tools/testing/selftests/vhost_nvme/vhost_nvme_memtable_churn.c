// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost_nvme_memtable_churn [N]: a helper of module_load.sh, not a test.
 *
 * Opens /dev/vhost-nvme, becomes its owner and replaces the memory table N
 * times (default 8), alternating between one region and the same memory
 * as two, then closes the device and exits 0 (1 with a message on any
 * error). Every replaced table is freed after an RCU grace period by a
 * callback in the module; module_load.sh unloads the module right after
 * this returns, so the module's exit must wait for such callbacks
 * (rcu_barrier()) or one runs in freed module text.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"

#define MEM_SIZE	(4ull << 20)

/* The guest's memory as two regions of half its size each. */
static int set_two_regions(struct guest *g)
{
	const __u64 half = g->mem_size / 2;
	struct vhost_memory_region r[2] = {
		{
			.guest_phys_addr = g->mem_gpa,
			.memory_size = half,
			.userspace_addr = (uintptr_t)g->mem,
		},
		{
			.guest_phys_addr = g->mem_gpa + half,
			.memory_size = half,
			.userspace_addr = (uintptr_t)g->mem + half,
		},
	};

	return guest_set_mem_regions(g, r, 2);
}

/*
 * Run on @cpu if there is one. Lazy RCU callbacks wait in a per-CPU list
 * that a synchronize_rcu() on that CPU flushes; the close (whose release
 * synchronizes) runs on another CPU than the table changes, so that the
 * callbacks of the replaced tables are still queued when it returns.
 */
static void run_on(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

int main(int argc, char **argv)
{
	struct guest g;
	long i, n = 8;
	char *end;
	int rc;

	if (argc > 2) {
		fprintf(stderr, "usage: %s [N]\n", argv[0]);
		return 1;
	}
	if (argc == 2) {
		errno = 0;
		n = strtol(argv[1], &end, 0);
		if (errno || *end || end == argv[1] || n < 1) {
			fprintf(stderr, "%s: N must be a positive number, not '%s'\n",
				argv[0], argv[1]);
			return 1;
		}
	}
	rc = guest_open(&g, MEM_SIZE);
	if (rc) {
		fprintf(stderr, "%s: open %s: %s\n", argv[0], GUEST_DEV_PATH,
			strerror(-rc));
		return 1;
	}
	rc = guest_set_owner(&g);
	if (rc) {
		fprintf(stderr, "%s: VHOST_SET_OWNER: %s\n", argv[0],
			strerror(-rc));
		guest_close(&g);
		return 1;
	}
	run_on(1);
	for (i = 0; i < n; i++) {
		rc = i % 2 ? set_two_regions(&g) : guest_set_mem_table(&g);
		if (rc) {
			fprintf(stderr, "%s: VHOST_SET_MEM_TABLE %ld of %ld (%d regions): %s\n",
				argv[0], i + 1, n, i % 2 ? 2 : 1,
				strerror(-rc));
			guest_close(&g);
			return 1;
		}
	}
	run_on(0);
	guest_close(&g);
	return 0;
}
