/*
 * rtp-quality-check: feeds RTP packet descriptions to rtp-quality.c and prints
 * what it measured, so tests can hold crafted sequences against RFC 3550.
 *   stdin:  one packet a line, "<ssrc> <seq> <rtp timestamp> <arrival microseconds>"
 *   stdout: one JSON object a source, in order of first appearance
 *   usage:  rtp-quality-check <clock rate Hz>
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "rtp-quality.h"

#define MAX_SOURCES 64

int main(int argc, char **argv) {
  if (argc != 2 || atol(argv[1]) <= 0) {
    fprintf(stderr, "usage: rtp-quality-check <clock rate Hz>\n");
    return 2;
  }
  uint32_t rate = (uint32_t)atol(argv[1]);
  static RtpQuality q[MAX_SOURCES];
  int n = 0;
  unsigned long ssrc, seq, ts;
  unsigned long long at;
  int got;
  while ((got = scanf("%lu %lu %lu %llu", &ssrc, &seq, &ts, &at)) == 4) {
    if (seq > 65535 || ssrc > 0xffffffffUL || ts > 0xffffffffUL) {
      fprintf(stderr, "rtp-quality-check: value out of range\n");
      return 2;
    }
    int i = 0;
    while (i < n && q[i].ssrc != ssrc) i++;
    if (i == n) {
      if (n == MAX_SOURCES) return 2;
      rtpq_init(&q[n++], (uint32_t)ssrc, rate);
    }
    rtpq_packet(&q[i], (uint16_t)seq, (uint32_t)ts, at);
  }
  if (got != EOF) {
    fprintf(stderr, "rtp-quality-check: expected \"<ssrc> <seq> <ts> <arrival us>\" lines\n");
    return 2;
  }
  for (int i = 0; i < n; i++)
    printf("{\"ssrc\":%" PRIu32 ",\"expected\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
           ",\"outOfOrder\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"jitter\":%.9f}\n",
           q[i].ssrc, rtpq_expected(&q[i]), rtpq_received(&q[i]), rtpq_lost(&q[i]), q[i].out_of_order,
           q[i].duplicates, rtpq_jitter_seconds(&q[i]));
  return 0;
}
