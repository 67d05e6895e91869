/* t_loop.c - the event loop: timers, fds, async, signals, hooks, tasks. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "loop.h"
#include "tap.h"

/* --- timers -------------------------------------------------------------- */

static int order[8], norder;

static void rec_timer(struct hs_loop *l, void *arg)
{
	order[norder++] = (int)(intptr_t)arg;
	if (norder == 3)
		hs_loop_stop(l);
}

static void stop_timer(struct hs_loop *l, void *arg)
{
	*(int *)arg = 1;
	hs_loop_stop(l);
}

static int rearms;

static void rearm_timer(struct hs_loop *l, void *arg)
{
	if (++rearms < 5)
		hs_loop_timer(l, 0, rearm_timer, NULL);
	else
		hs_loop_stop(l);
}

/* Each timer's deadline (arm time + delay: arming 200 timers may cross a
 * millisecond, so the delays alone need not come out sorted). */
static uint64_t delays[200], last_delay;
static int nsorted, unsorted;

static void sorted_timer(struct hs_loop *l, void *arg)
{
	uint64_t d = *(uint64_t *)arg;

	if (d < last_delay)
		unsorted++;
	last_delay = d;
	nsorted++;
}

static void test_timers(void)
{
	struct hs_loop *l = hs_loop_new();
	uint64_t t0 = hs_now_ms(), id15, id30;
	int timed_out = 0;

	ok(l != NULL, "loop created");
	id30 = hs_loop_timer(l, 30, rec_timer, (void *)30);
	hs_loop_timer(l, 10, rec_timer, (void *)10);
	id15 = hs_loop_timer(l, 15, rec_timer, (void *)15);
	hs_loop_timer(l, 20, rec_timer, (void *)20);
	ok(id30 && id15 && id30 != id15, "timer ids are non-zero and distinct");
	is_int(hs_loop_timer_cancel(l, id15), 0, "cancel an armed timer");
	is_int(hs_loop_timer_cancel(l, id15), -ENOENT, "cancel it again is harmless");
	is_int(hs_loop_timer_cancel(l, 0), -ENOENT, "cancel id 0 is harmless");
	is_int(hs_loop_run(l), 0, "run returns 0 after stop");
	is_int(norder, 3, "three timers fired");
	ok(order[0] == 10 && order[1] == 20 && order[2] == 30, "in deadline order (%d %d %d)",
	   order[0], order[1], order[2]);
	ok(hs_now_ms() - t0 >= 30, "not before their deadline");
	is_int(hs_loop_timer_cancel(l, id30), -ENOENT, "cancel a fired timer is harmless");

	hs_loop_timer(l, 0, rearm_timer, NULL);
	hs_loop_timer(l, 5000, stop_timer, &timed_out);
	hs_loop_run(l);
	is_int(rearms, 5, "a timer callback can re-arm (delay 0 runs next turn)");
	ok(!timed_out, "re-armed timers did not stall the loop");

	/* Many timers with scattered deadlines come out sorted. */
	{
		struct hs_loop *l2 = hs_loop_new();
		uint64_t ids[200];
		int ncancel = 0;

		for (int i = 0; i < 200; i++) {
			uint64_t d = (uint64_t)((i * 37) % 50);

			delays[i] = hs_now_ms() + d;
			ids[i] = hs_loop_timer(l2, d, sorted_timer, &delays[i]);
		}
		for (int i = 0; i < 200; i += 3)
			ncancel += hs_loop_timer_cancel(l2, ids[i]) == 0;
		is_int(ncancel, 67, "cancel every third of 200 timers");
		hs_loop_timer(l2, 100, stop_timer, &timed_out);
		hs_loop_run(l2);
		is_int(nsorted, 133, "the 133 others fired");
		ok(!unsorted, "in deadline order");
		hs_loop_free(l2);
	}
	hs_loop_free(l);
}

/* --- fds: deleting a ready fd from another callback in the same batch ---- */

struct pair {
	struct hs_loop *l;
	int fds[2][2]; /* two pipes */
	int calls[2];
};

static void pipe_cb(struct hs_loop *l, int fd, uint32_t revents, void *arg)
{
	struct pair *p = arg;
	int me = fd == p->fds[0][0] ? 0 : 1, other = !me;

	p->calls[me]++;
	/* Delete and close the other one, which is ready in this same batch. */
	hs_loop_del_fd(l, p->fds[other][0]);
	hs_loop_del_fd(l, p->fds[me][0]);
	close(p->fds[other][0]);
	p->fds[other][0] = -1;
}

static void test_fds(void)
{
	struct hs_loop *l = hs_loop_new();
	struct pair p = { .l = l };
	int done = 0;

	for (int i = 0; i < 2; i++) {
		if (pipe(p.fds[i]) < 0)
			return;
		(void)!write(p.fds[i][1], "x", 1);
		hs_loop_add_fd(l, p.fds[i][0], HS_EV_READ, pipe_cb, &p);
	}
	is_int(hs_loop_add_fd(l, p.fds[0][0], HS_EV_READ, pipe_cb, &p), -EEXIST,
	       "adding an fd twice is refused");
	hs_loop_timer(l, 50, stop_timer, &done);
	hs_loop_run(l);
	is_int(p.calls[0] + p.calls[1], 1, "an fd deleted in the same batch gets no callback");
	is_int(hs_loop_del_fd(l, 1000), -ENOENT, "deleting an unknown fd gives -ENOENT");
	is_int(hs_loop_mod_fd(l, 1000, HS_EV_READ), -ENOENT, "modifying one too");
	for (int i = 0; i < 2; i++) {
		if (p.fds[i][0] >= 0)
			close(p.fds[i][0]);
		close(p.fds[i][1]);
	}
	hs_loop_free(l);
}

/* --- async, signals, hooks, tasks ---------------------------------------- */

static int async_calls;

static void async_cb(struct hs_loop *l, void *arg)
{
	async_calls++;
	hs_loop_stop(l);
}

static void *notifier(void *arg)
{
	usleep(20000);
	for (int i = 0; i < 100; i++)
		hs_loop_async_notify(arg);
	return NULL;
}

static void test_async(void)
{
	struct hs_loop *l = hs_loop_new();
	pthread_t th;
	int timed_out = 0;

	hs_loop_async(l, async_cb, NULL);
	hs_loop_timer(l, 5000, stop_timer, &timed_out);
	pthread_create(&th, NULL, notifier, l);
	hs_loop_run(l);
	pthread_join(th, NULL);
	ok(!timed_out, "a notify from another thread wakes the loop");
	ok(async_calls >= 1 && async_calls <= 2, "100 notifies coalesce (%d calls)", async_calls);
	hs_loop_free(l);
}

static int got_signo;

static void sig_cb(struct hs_loop *l, int signo, void *arg)
{
	got_signo = signo;
	hs_loop_stop(l);
}

static void raise_timer(struct hs_loop *l, void *arg)
{
	raise(SIGHUP);
}

static void test_signals(void)
{
	struct hs_loop *l = hs_loop_new();
	int sigs[] = { SIGHUP, SIGTERM }, timed_out = 0;

	is_int(hs_loop_signals(l, sigs, 2, sig_cb, NULL), 0, "signalfd set up");
	hs_loop_timer(l, 5, raise_timer, NULL);
	hs_loop_timer(l, 5000, stop_timer, &timed_out);
	hs_loop_run(l);
	is_int(got_signo, SIGHUP, "SIGHUP raised to self arrives through the loop");
	ok(!timed_out, "without waiting for the safety timer");
	hs_loop_free(l);
}

static int hook_calls, tick_calls, wake_calls;

static void tick(struct hs_loop *l, void *arg)
{
	if (++tick_calls < 5)
		hs_loop_timer(l, 1, tick, NULL);
	else
		hs_loop_stop(l);
}

static void count_hook(struct hs_loop *l, void *arg)
{
	hook_calls++;
}

static void wake_hook(struct hs_loop *l, void *arg)
{
	/* Asks for five extra turns; the loop has nothing else to wake it. */
	if (!*(int *)arg)
		return;
	if (++wake_calls < 5)
		hs_loop_wake_now(l);
	else
		hs_loop_stop(l);
}

static int task_runs;
static struct hs_defer task_b;

static void task_fn(struct hs_loop *l, struct hs_defer *d)
{
	task_runs++;
	if (task_runs == 1)
		hs_loop_defer(l, &task_b); /* runs next turn, without sleeping */
	else
		hs_loop_stop(l);
}

static void test_hooks(void)
{
	struct hs_loop *l = hs_loop_new();
	struct hs_defer a = { .fn = task_fn };
	int timed_out = 0, armed = 0;

	hs_loop_before_sleep(l, count_hook, NULL);
	hs_loop_timer(l, 1, tick, NULL);
	hs_loop_run(l);
	is_int(tick_calls, 5, "five timer turns");
	ok(hook_calls >= 6, "the before-sleep hook ran every turn (%d)", hook_calls);

	hs_loop_before_sleep(l, wake_hook, &armed);
	armed = 1;
	hs_loop_timer(l, 5000, stop_timer, &timed_out);
	hs_loop_run(l);
	is_int(wake_calls, 5, "hs_loop_wake_now makes the next turn poll");
	ok(!timed_out, "without sleeping until the next timer");
	armed = 0;

	task_b.fn = task_fn;
	hs_loop_defer(l, &a);
	hs_loop_defer(l, &a);
	hs_loop_run(l);
	is_int(task_runs, 2, "a task queued twice runs once; one queued by a task runs next turn");
	ok(!timed_out, "queued tasks do not wait for a timer");

	hs_loop_defer(l, &a);
	hs_loop_defer_cancel(l, &a);
	ok(a.pprev == NULL, "a cancelled task is unqueued");
	hs_loop_free(l);
}

int main(void)
{
	uint64_t a = hs_now_ms(), b;

	signal(SIGPIPE, SIG_IGN);
	usleep(2000);
	b = hs_now_ms();
	ok(b > a, "monotonic clock advances");
	ok(hs_now_us() / 1000 >= b, "microseconds agree with milliseconds");
	ok(hs_wall_ms() > 1600000000000ull, "wall clock is real time");
	test_timers();
	test_fds();
	test_async();
	test_signals();
	test_hooks();
	return tap_done();
}
