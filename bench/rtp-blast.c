/*
 * rtp-blast: the forwarder bench's load generator and counter. Node cannot
 * send and count a few hundred thousand datagrams a second on a small machine.
 *
 *   rtp-blast --receivers N
 * binds N loopback UDP ports, prints "PORTS p1 p2 ..." and then serves one
 * command per stdin line:
 *   RUN <audioPort> <videoPort> <packetsPerSecond> <milliseconds>
 * sends paced RTP (1 in 5 packets audio of 160 bytes, the rest video of 1200
 * bytes), waits for stragglers, and prints
 *   {"sentAudio":A,"sentVideo":V,"received":R}
 * where R counts datagrams received on all N ports during the run.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RECEIVERS 256
#define BATCH 64
#define TICK_NS 100000L /* pace in 0.1 ms slices: bursts stay small */
#define DRAIN_MS 400

static int rx_fd[MAX_RECEIVERS];
static int n_rx;
static uint64_t received; /* atomic */

static void die(const char *what) {
  fprintf(stderr, "rtp-blast: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void *receive_loop(void *arg) {
  int ep = *(int *)arg;
  static char bufs[BATCH][16]; /* we count, not read: MSG_TRUNC spares copying payloads */
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i] = (struct iovec){bufs[i], sizeof bufs[i]};
    msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
  }
  struct epoll_event ev[64];
  for (;;) {
    int n = epoll_wait(ep, ev, 64, -1);
    for (int i = 0; i < n; i++) {
      int fd = ev[i].data.fd;
      int got;
      while ((got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL)) > 0)
        __atomic_add_fetch(&received, (uint64_t)got, __ATOMIC_RELAXED);
    }
  }
  return NULL;
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000L + t.tv_nsec;
}

static void run(int tx, int aport, int vport, long rate, long ms) {
  static unsigned char pkt[2][1200];
  const int size[2] = {160, 1200};
  struct sockaddr_in dst[2];
  for (int k = 0; k < 2; k++) {
    dst[k] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(k ? vport : aport)};
    dst[k].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pkt[k][0] = 0x80;                         /* RTP version 2 */
    pkt[k][1] = k ? 96 : 111;                 /* payload type */
    uint32_t ssrc = htonl(k ? 2222 : 1111);
    memcpy(pkt[k] + 8, &ssrc, 4);
  }
  struct mmsghdr msgs[BATCH];
  static struct iovec pair[BATCH][2]; /* per-packet header, shared payload */
  static unsigned char hdr[BATCH][12];
  uint64_t sent[2] = {0, 0}, total = 0;
  uint16_t seq[2] = {0, 0};
  uint64_t start_rx = __atomic_load_n(&received, __ATOMIC_RELAXED);
  int64_t t0 = now_ns(), end = t0 + ms * 1000000L;
  struct timespec next = {0};
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (;;) {
    int64_t t = now_ns();
    if (t >= end) break;
    uint64_t due = (uint64_t)((double)(t - t0) * (double)rate / 1e9);
    while (total < due) {
      int n = 0;
      for (; n < BATCH && total + (uint64_t)n < due; n++) {
        int k = (total + (uint64_t)n) % 5 == 0 ? 0 : 1;
        memcpy(hdr[n], pkt[k], 12);
        uint16_t s = htons(seq[k]++);
        uint32_t ts = htonl((uint32_t)(seq[k] * 3000u));
        memcpy(hdr[n] + 2, &s, 2);
        memcpy(hdr[n] + 4, &ts, 4);
        pair[n][0] = (struct iovec){hdr[n], 12};
        pair[n][1] = (struct iovec){pkt[k] + 12, (size_t)size[k] - 12};
        msgs[n] = (struct mmsghdr){.msg_hdr = {.msg_name = &dst[k], .msg_namelen = sizeof dst[k],
                                                .msg_iov = pair[n], .msg_iovlen = 2}};
      }
      int done = sendmmsg(tx, msgs, (unsigned)n, 0);
      if (done < 0) {
        if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) continue;
        die("sendmmsg");
      }
      for (int i = 0; i < done; i++) sent[(total + (uint64_t)i) % 5 == 0 ? 0 : 1]++;
      total += (uint64_t)done;
    }
    next.tv_nsec += TICK_NS;
    if (next.tv_nsec >= 1000000000L) next.tv_nsec -= 1000000000L, next.tv_sec++;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  struct timespec drain = {0, DRAIN_MS * 1000000L};
  nanosleep(&drain, NULL);
  uint64_t got = __atomic_load_n(&received, __ATOMIC_RELAXED) - start_rx;
  printf("{\"sentAudio\":%llu,\"sentVideo\":%llu,\"received\":%llu}\n", (unsigned long long)sent[0],
         (unsigned long long)sent[1], (unsigned long long)got);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc != 3 || strcmp(argv[1], "--receivers") || (n_rx = atoi(argv[2])) < 1 || n_rx > MAX_RECEIVERS) {
    fprintf(stderr, "usage: rtp-blast --receivers N   (1..%d), then RUN lines on stdin\n", MAX_RECEIVERS);
    return 2;
  }
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  printf("PORTS");
  for (int i = 0; i < n_rx; i++) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) die("socket");
    int sz = 8 * 1024 * 1024;
    /* root may exceed rmem_max: keep the counter from being the bottleneck */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    printf(" %u", ntohs(sa.sin_port));
    rx_fd[i] = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }
  printf("\n");
  fflush(stdout);
  pthread_t th;
  pthread_create(&th, NULL, receive_loop, &ep);

  int tx = socket(AF_INET, SOCK_DGRAM, 0);
  if (tx < 0) die("socket");
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    int a, v;
    long rate, ms;
    if (sscanf(line, "RUN %d %d %ld %ld", &a, &v, &rate, &ms) == 4 && a > 0 && a < 65536 && v > 0 &&
        v < 65536 && rate > 0 && rate <= 10000000 && ms > 0 && ms <= 600000) {
      run(tx, a, v, rate, ms);
    } else {
      printf("{\"error\":\"expected RUN <audioPort> <videoPort> <rate> <ms>\"}\n");
      fflush(stdout);
    }
  }
  return 0; /* stdin closed: the bench is done with us */
}
