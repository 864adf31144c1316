/* inspect_pt.h — `nncc inspect`: the command (tools/inspect_pt.c), which
 * describes a TorchScript archive itself and hands an OUT.so to
 * nncc_inspect_so_ex (tools/inspect_so.c).
 */
#ifndef NNCC_INSPECT_PT_H
#define NNCC_INSPECT_PT_H

#include <stdbool.h>

/* argv holds the arguments after "inspect". Returns the exit code
 * (DESIGN.md §8: 0 ok, 1 the model can't be read, 2 bad command line). */
int nncc_cmd_inspect(int argc, char **argv);

/* `nncc inspect OUT.so [--json]` (tools/inspect_so.c): describes a compiled
 * model, as text or (json) as one JSON object. Returns the exit code (0, or
 * 1 when it can't be loaded). */
int nncc_inspect_so_ex(const char *path, bool json);

/* Prints s[0..n) (n < 0: up to the NUL) to stdout as a JSON string. */
void inspect_json_strn(const char *s, int n);

#endif
