/*
 * worker.c: the C worker the benchmarks supervise, so that what is measured
 * is the supervisor, not the worker's runtime (the anchors were measured the
 * same way).
 *
 *   worker crash   append "start <ns>" and "exit <ns>" to $BENCH_OUT, exit 1
 *   worker sleep   append "start <ns>" to $BENCH_OUT (if set), then sleep until a signal
 *
 * <ns> is CLOCK_MONOTONIC in nanoseconds, comparable across processes.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void stamp(const char *what) {
	const char *path = getenv("BENCH_OUT");
	if (!path) return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char buf[64];
	int n = snprintf(buf, sizeof buf, "%s %lld\n", what, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) return;
	if (write(fd, buf, n) != n) { /* nothing to do */ }
	close(fd);
}

int main(int argc, char **argv) {
	stamp("start");
	if (argc > 1 && strcmp(argv[1], "crash") == 0) {
		stamp("exit");
		_exit(1);
	}
	for (;;) pause();
}
