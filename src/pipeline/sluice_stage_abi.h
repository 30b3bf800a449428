/* The C ABI of a plugin stage: a shared library that `sluice worker --pipeline FILE` loads at start
 * (a stage of `type: plugin`, `library: ./libmystage.so`) to process each task in-process.
 *
 * For each task sluice downloads the input, makes an empty output directory, and calls
 * sluice_stage_process; every regular file the plugin leaves in output_dir is uploaded to the
 * stage's destination, as for an exec stage. The library exports three functions with C linkage:
 *
 *   int  sluice_stage_init(const char* config, void** state);   once, at start; 0 = ready
 *   int  sluice_stage_process(void* state, const sluice_stage_input* in, sluice_stage_output* out);
 *   void sluice_stage_close(void* state);                        once, at the end
 *
 * and may export `int sluice_stage_abi_version(void)` returning SLUICE_STAGE_ABI_VERSION (when
 * present and different, loading fails).
 *
 * sluice_stage_process returns SLUICE_STAGE_OK, or an error code whose class decides what happens
 * next (retry later, or straight to the dead-letter topic), with a message written into
 * out->error (at most out->error_size bytes, NUL included; sluice zeroes it first).
 * Thread-safety: sluice_stage_process is called from the stage's `workers` threads at once (set
 * `workers: 1` for a plugin that cannot be called concurrently); init and close are called alone.
 * Ownership: the strings in `in` are sluice's and valid only during the call; `state` is the
 * plugin's own, handed back to every call.
 */
#ifndef SLUICE_STAGE_ABI_H_
#define SLUICE_STAGE_ABI_H_

#ifdef __cplusplus
extern "C" {
#endif

#include <stddef.h>

#define SLUICE_STAGE_ABI_VERSION 1

/* Return codes of sluice_stage_process. */
#define SLUICE_STAGE_OK 0
#define SLUICE_STAGE_ERROR_BAD_INPUT 1      /* this input cannot be processed: dead-lettered at once */
#define SLUICE_STAGE_ERROR_RETRIABLE 2      /* may pass later: retried with backoff */
#define SLUICE_STAGE_ERROR_RESOURCE_LIMIT 3 /* too big, too long: dead-lettered at once */
/* Any other non-zero value is a fatal error (dead-lettered at once). */

typedef struct sluice_stage_input {
  const char* input_path; /* the downloaded input file (a local path) */
  const char* output_dir; /* an empty directory for the outputs */
  const char* doc_id;
  const char* key;  /* the object key or the source path */
  const char* name; /* the input's file name without its extension */
} sluice_stage_input;

typedef struct sluice_stage_output {
  char* error; /* a message for the failure notification */
  size_t error_size;
} sluice_stage_output;

typedef int (*sluice_stage_init_fn)(const char* config, void** state);
typedef int (*sluice_stage_process_fn)(void* state, const sluice_stage_input* in, sluice_stage_output* out);
typedef void (*sluice_stage_close_fn)(void* state);
typedef int (*sluice_stage_abi_version_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_STAGE_ABI_H_ */
