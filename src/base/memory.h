// Allocator settings for long-running sluice processes.
//
// glibc's malloc, left alone, keeps one arena per busy thread and raises its mmap threshold each
// time a large block is freed, so after the first multi-megabyte document every later payload of
// that size is carved from an arena and the freed space stays resident. A pipeline that passes
// documents of a few MiB between a dozen threads then holds hundreds of MiB it no longer uses
// (measured: the ingest benchmark's whole corpus peaked at 538 MiB for the process tree, about
// 390–420 MiB with these settings, at the same throughput within noise).
//
// Thread-safety: call once at the start of main(), before any thread starts.
#pragma once

namespace sluice {

// Fixes the mmap threshold (blocks of 1 MiB and more are mapped and returned on free), trims the
// heap once 1 MiB is free at its top, and caps the arenas at four. An environment variable the
// user set (MALLOC_ARENA_MAX, MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_) wins.
void tune_allocator();

}  // namespace sluice
