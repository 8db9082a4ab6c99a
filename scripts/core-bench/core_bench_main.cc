// Driver of core_bench_lib.cc: the best of 15 runs (the least disturbed by
// whatever else the machine runs), in ns per datagram or frame.
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <algorithm>
extern "C" uint64_t RunRx(int); extern "C" uint64_t RunTx(int);
int main() {
  const int iters = 20000;  // x 64 per batch
  for (auto [name, fn] : {std::pair{"rx Classify", RunRx}, std::pair{"tx FrameDrop+Destinations", RunTx}}) {
    double best = 1e18; uint64_t x = 0;
    for (int rep = 0; rep < 15; rep++) {
      auto t0 = std::chrono::steady_clock::now(); x += fn(iters); auto t1 = std::chrono::steady_clock::now();
      best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count() / (iters * 64.0));
    }
    printf("%s: %.1f ns per datagram/frame (min of 15; x=%lu)\n", name, best, (unsigned long)x);
  }
}
