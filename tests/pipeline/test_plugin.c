/* A plugin stage for the tests (plugin_stage_test.cc): copies its input into output_dir as
 * <name><suffix> with the letters upper-cased, where the suffix comes from the config ("suffix=.up").
 * An input that starts with "FAIL" is refused as bad input, one that starts with "RETRY" as a
 * retriable error; the config "refuse" makes init fail. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/sluice_stage_abi.h"

typedef struct {
  char suffix[64];
} state_t;

int sluice_stage_abi_version(void) {
  return SLUICE_STAGE_ABI_VERSION;
}

int sluice_stage_init(const char* config, void** state) {
  if (strcmp(config, "refuse") == 0) return 1;
  state_t* s = calloc(1, sizeof *s);
  if (s == NULL) return 1;
  const char* eq = strncmp(config, "suffix=", 7) == 0 ? config + 7 : ".out";
  snprintf(s->suffix, sizeof s->suffix, "%s", eq);
  *state = s;
  return 0;
}

int sluice_stage_process(void* state, const sluice_stage_input* in, sluice_stage_output* out) {
  const state_t* s = state;
  FILE* f = fopen(in->input_path, "rb");
  if (f == NULL) {
    snprintf(out->error, out->error_size, "cannot open %s", in->input_path);
    return SLUICE_STAGE_ERROR_RETRIABLE;
  }
  char head[8] = {0};
  size_t n = fread(head, 1, 5, f);
  if (n >= 4 && memcmp(head, "FAIL", 4) == 0) {
    fclose(f);
    snprintf(out->error, out->error_size, "input of %s starts with FAIL", in->doc_id);
    return SLUICE_STAGE_ERROR_BAD_INPUT;
  }
  if (n >= 5 && memcmp(head, "RETRY", 5) == 0) {
    fclose(f);
    snprintf(out->error, out->error_size, "try %s again", in->key);
    return SLUICE_STAGE_ERROR_RETRIABLE;
  }
  rewind(f);
  char path[4096];
  snprintf(path, sizeof path, "%s/%s%s", in->output_dir, in->name, s->suffix);
  FILE* o = fopen(path, "wb");
  if (o == NULL) {
    fclose(f);
    snprintf(out->error, out->error_size, "cannot write %s", path);
    return 99;
  }
  int c;
  while ((c = fgetc(f)) != EOF) fputc(toupper(c), o);
  fclose(f);
  fclose(o);
  return SLUICE_STAGE_OK;
}

void sluice_stage_close(void* state) {
  free(state);
}
