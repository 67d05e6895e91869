/* loop.c - see loop.h for the turn structure and the design. */
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

#define MAX_EVENTS 256
#define NO_HEAP UINT32_MAX

struct fd_ent {
	hs_fd_cb *cb; /* NULL: not registered */
	void *arg;
	uint32_t events;
	uint32_t gen; /* matches the epoll data of the live registration */
};

struct tnode {
	uint64_t when; /* deadline, hs_now_ms() */
	uint64_t seq;  /* creation order: ties fire FIFO */
	hs_timer_cb *cb;
	void *arg;
	uint32_t gen;  /* bumped when the slot is freed; part of the id */
	uint32_t hidx; /* index in heap, NO_HEAP when the slot is free */
	uint32_t next_free;
};

struct cb_ent {
	void (*cb)(struct hs_loop *l, void *arg);
	void *arg;
};

struct sig_ent {
	int fd;
	hs_signal_cb *cb;
	void *arg;
};

struct hs_loop {
	int epfd;
	int evfd;
	int stop;
	int wake_now;
	uint32_t fd_gen;

	struct fd_ent *fds;
	size_t nfds;

	struct tnode *tn;
	size_t ntn;
	uint32_t tfree; /* head of the free slot list, NO_HEAP if empty */
	uint32_t *heap;
	size_t nheap;
	uint64_t tseq;

	struct cb_ent *hooks;
	size_t nhooks;
	struct cb_ent *asyncs;
	size_t nasyncs;
	struct sig_ent *sigs;
	size_t nsigs;

	struct hs_defer *defer;
};

uint64_t hs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t hs_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t hs_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void async_ready(struct hs_loop *l, int fd, uint32_t revents, void *arg)
{
	uint64_t v;

	/* Drain first: a notify arriving while the callbacks run wakes us again. */
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	for (size_t i = 0; i < l->nasyncs; i++)
		l->asyncs[i].cb(l, l->asyncs[i].arg);
}

struct hs_loop *hs_loop_new(void)
{
	struct hs_loop *l = hs_xcalloc(1, sizeof(*l));
	int e;

	l->tfree = NO_HEAP;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		goto out_free;
	l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->evfd < 0)
		goto out_epoll;
	if (hs_loop_add_fd(l, l->evfd, HS_EV_READ, async_ready, NULL) < 0)
		goto out_evfd;
	return l;

out_evfd:
	e = errno;
	close(l->evfd);
	errno = e;
out_epoll:
	e = errno;
	close(l->epfd);
	errno = e;
out_free:
	free(l->fds);
	free(l);
	return NULL;
}

void hs_loop_free(struct hs_loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nsigs; i++)
		close(l->sigs[i].fd);
	close(l->evfd);
	close(l->epfd);
	free(l->fds);
	free(l->tn);
	free(l->heap);
	free(l->hooks);
	free(l->asyncs);
	free(l->sigs);
	free(l);
}

/* --- fds ----------------------------------------------------------------- */

static uint32_t to_epoll(uint32_t ev)
{
	return (ev & HS_EV_READ ? EPOLLIN : 0) | (ev & HS_EV_WRITE ? EPOLLOUT : 0);
}

static uint32_t from_epoll(uint32_t ev)
{
	return (ev & EPOLLIN ? HS_EV_READ : 0) | (ev & EPOLLOUT ? HS_EV_WRITE : 0) |
	       (ev & EPOLLERR ? HS_EV_ERR : 0) | (ev & (EPOLLHUP | EPOLLRDHUP) ? HS_EV_HUP : 0);
}

int hs_loop_add_fd(struct hs_loop *l, int fd, uint32_t events, hs_fd_cb *cb, void *arg)
{
	struct epoll_event ev;

	if (fd < 0 || !cb)
		return -EINVAL;
	if ((size_t)fd >= l->nfds) {
		size_t n = l->nfds ? l->nfds : 64;

		while (n <= (size_t)fd)
			n *= 2;
		l->fds = hs_xrealloc(l->fds, n * sizeof(*l->fds));
		memset(l->fds + l->nfds, 0, (n - l->nfds) * sizeof(*l->fds));
		l->nfds = n;
	}
	if (l->fds[fd].cb)
		return -EEXIST;
	if (++l->fd_gen == 0)
		l->fd_gen = 1;
	memset(&ev, 0, sizeof(ev));
	ev.events = to_epoll(events);
	ev.data.u64 = (uint64_t)l->fd_gen << 32 | (uint32_t)fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	l->fds[fd] = (struct fd_ent){ cb, arg, events, l->fd_gen };
	return 0;
}

int hs_loop_mod_fd(struct hs_loop *l, int fd, uint32_t events)
{
	struct epoll_event ev;
	struct fd_ent *e;

	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].cb)
		return -ENOENT;
	e = &l->fds[fd];
	if (e->events == events)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = to_epoll(events);
	ev.data.u64 = (uint64_t)e->gen << 32 | (uint32_t)fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	e->events = events;
	return 0;
}

int hs_loop_del_fd(struct hs_loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].cb)
		return -ENOENT;
	/* EBADF/ENOENT here only mean the fd was closed first: already gone. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&l->fds[fd], 0, sizeof(l->fds[fd]));
	return 0;
}

/* --- timers: a binary min-heap of slot indices --------------------------- */

static int tless(const struct hs_loop *l, uint32_t a, uint32_t b)
{
	const struct tnode *x = &l->tn[a], *y = &l->tn[b];

	return x->when < y->when || (x->when == y->when && x->seq < y->seq);
}

static void hset(struct hs_loop *l, size_t i, uint32_t slot)
{
	l->heap[i] = slot;
	l->tn[slot].hidx = (uint32_t)i;
}

static void sift_up(struct hs_loop *l, size_t i)
{
	uint32_t s = l->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!tless(l, s, l->heap[p]))
			break;
		hset(l, i, l->heap[p]);
		i = p;
	}
	hset(l, i, s);
}

static void sift_down(struct hs_loop *l, size_t i)
{
	uint32_t s = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && tless(l, l->heap[c + 1], l->heap[c]))
			c++;
		if (!tless(l, l->heap[c], s))
			break;
		hset(l, i, l->heap[c]);
		i = c;
	}
	hset(l, i, s);
}

static void heap_remove(struct hs_loop *l, size_t i)
{
	uint32_t slot = l->heap[i];

	l->nheap--;
	if (i < l->nheap) {
		uint32_t moved = l->heap[l->nheap];

		/* The last element may belong above or below hole i. */
		hset(l, i, moved);
		sift_down(l, i);
		if (l->tn[moved].hidx == i)
			sift_up(l, i);
	}
	/* Free the slot; the new generation makes its old id unknown. */
	l->tn[slot].hidx = NO_HEAP;
	if (++l->tn[slot].gen == 0)
		l->tn[slot].gen = 1;
	l->tn[slot].next_free = l->tfree;
	l->tfree = slot;
}

uint64_t hs_loop_timer(struct hs_loop *l, uint64_t delay_ms, hs_timer_cb *cb, void *arg)
{
	uint32_t slot;
	struct tnode *t;

	if (l->tfree == NO_HEAP) {
		size_t n = l->ntn ? l->ntn * 2 : 16;

		if (n >= NO_HEAP)
			hs_oom();
		l->tn = hs_xrealloc(l->tn, n * sizeof(*l->tn));
		l->heap = hs_xrealloc(l->heap, n * sizeof(*l->heap));
		for (size_t i = n; i-- > l->ntn;) {
			l->tn[i] = (struct tnode){ .gen = 1, .hidx = NO_HEAP, .next_free = l->tfree };
			l->tfree = (uint32_t)i;
		}
		l->ntn = n;
	}
	slot = l->tfree;
	t = &l->tn[slot];
	l->tfree = t->next_free;
	t->when = hs_now_ms() + delay_ms;
	if (t->when < delay_ms) /* overflow: never */
		t->when = UINT64_MAX;
	t->seq = l->tseq++;
	t->cb = cb;
	t->arg = arg;
	l->heap[l->nheap] = slot;
	t->hidx = (uint32_t)l->nheap++;
	sift_up(l, t->hidx);
	return (uint64_t)t->gen << 32 | slot;
}

int hs_loop_timer_cancel(struct hs_loop *l, uint64_t id)
{
	uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);

	if (slot >= l->ntn || l->tn[slot].gen != gen || l->tn[slot].hidx == NO_HEAP)
		return -ENOENT;
	heap_remove(l, l->tn[slot].hidx);
	return 0;
}

static void run_timers(struct hs_loop *l)
{
	uint64_t now = hs_now_ms(), limit = l->tseq;

	while (l->nheap && !l->stop) {
		struct tnode *t = &l->tn[l->heap[0]];
		hs_timer_cb *cb = t->cb;
		void *arg = t->arg;

		/* limit: timers armed by these callbacks wait for the next turn. */
		if (t->when > now || t->seq >= limit)
			break;
		heap_remove(l, 0);
		cb(l, arg);
	}
}

/* --- signals, async, hooks, tasks ---------------------------------------- */

static void signal_ready(struct hs_loop *l, int fd, uint32_t revents, void *arg)
{
	struct sig_ent *s = NULL;
	struct signalfd_siginfo si[8];
	ssize_t n;

	for (size_t i = 0; i < l->nsigs; i++)
		if (l->sigs[i].fd == fd)
			s = &l->sigs[i];
	if (!s)
		return;
	while ((n = read(fd, si, sizeof(si))) > 0) {
		for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++)
			s->cb(l, (int)si[i].ssi_signo, s->arg);
	}
}

int hs_loop_signals(struct hs_loop *l, const int *signos, int n, hs_signal_cb *cb, void *arg)
{
	sigset_t set;
	int fd, r;

	sigemptyset(&set);
	for (int i = 0; i < n; i++)
		sigaddset(&set, signos[i]);
	r = pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (r)
		return -r;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	l->sigs = hs_xrealloc(l->sigs, (l->nsigs + 1) * sizeof(*l->sigs));
	l->sigs[l->nsigs++] = (struct sig_ent){ fd, cb, arg };
	r = hs_loop_add_fd(l, fd, HS_EV_READ, signal_ready, NULL);
	if (r < 0) {
		l->nsigs--;
		close(fd);
	}
	return r;
}

int hs_loop_async(struct hs_loop *l, hs_async_cb *cb, void *arg)
{
	l->asyncs = hs_xrealloc(l->asyncs, (l->nasyncs + 1) * sizeof(*l->asyncs));
	l->asyncs[l->nasyncs++] = (struct cb_ent){ cb, arg };
	return 0;
}

void hs_loop_async_notify(struct hs_loop *l)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is saturated: a wake-up is pending anyway. */
	while (write(l->evfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

int hs_loop_before_sleep(struct hs_loop *l, hs_hook_cb *cb, void *arg)
{
	l->hooks = hs_xrealloc(l->hooks, (l->nhooks + 1) * sizeof(*l->hooks));
	l->hooks[l->nhooks++] = (struct cb_ent){ cb, arg };
	return 0;
}

void hs_loop_wake_now(struct hs_loop *l)
{
	l->wake_now = 1;
}

void hs_loop_defer(struct hs_loop *l, struct hs_defer *d)
{
	if (d->pprev)
		return;
	d->next = l->defer;
	if (d->next)
		d->next->pprev = &d->next;
	d->pprev = &l->defer;
	l->defer = d;
}

void hs_loop_defer_cancel(struct hs_loop *l, struct hs_defer *d)
{
	if (!d->pprev)
		return;
	*d->pprev = d->next;
	if (d->next)
		d->next->pprev = d->pprev;
	d->next = NULL;
	d->pprev = NULL;
}

static void run_tasks(struct hs_loop *l)
{
	/* Detach the queue: tasks queued while it runs wait for the next turn,
	 * so a task that re-queues itself cannot starve the loop. */
	struct hs_defer *list = l->defer;

	l->defer = NULL;
	if (list)
		list->pprev = &list;
	while (list) {
		struct hs_defer *d = list;

		list = d->next;
		if (list)
			list->pprev = &list;
		d->next = NULL;
		d->pprev = NULL;
		d->fn(l, d);
	}
}

/* --- the loop ------------------------------------------------------------ */

static int next_timeout(struct hs_loop *l)
{
	uint64_t now, when;

	if (l->wake_now || l->defer)
		return 0;
	if (!l->nheap)
		return -1;
	when = l->tn[l->heap[0]].when;
	now = hs_now_ms();
	if (when <= now)
		return 0;
	return when - now > INT_MAX ? INT_MAX : (int)(when - now);
}

int hs_loop_run(struct hs_loop *l)
{
	struct epoll_event evs[MAX_EVENTS];

	l->stop = 0;
	for (;;) {
		int n, timeout;

		for (size_t i = 0; i < l->nhooks; i++)
			l->hooks[i].cb(l, l->hooks[i].arg);
		run_tasks(l);
		if (l->stop)
			return 0;
		timeout = next_timeout(l);
		l->wake_now = 0;
		n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			hs_error("epoll_wait: %s", strerror(errno));
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			int fd = (int)(uint32_t)evs[i].data.u64;
			uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
			struct fd_ent *e;

			if ((size_t)fd >= l->nfds)
				continue;
			e = &l->fds[fd];
			/* A callback earlier in this batch may have deleted it. */
			if (!e->cb || e->gen != gen)
				continue;
			e->cb(l, fd, from_epoll(evs[i].events), e->arg);
		}
		run_timers(l);
	}
}

void hs_loop_stop(struct hs_loop *l)
{
	l->stop = 1;
}
