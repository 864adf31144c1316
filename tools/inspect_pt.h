/* inspect_pt.h — `nncc inspect`: the command (tools/inspect_pt.c), which
 * describes a TorchScript archive itself and hands an OUT.so to
 * nncc_inspect_so (tools/inspect_so.c).
 */
#ifndef NNCC_INSPECT_PT_H
#define NNCC_INSPECT_PT_H

/* argv holds the arguments after "inspect". Returns the exit code
 * (DESIGN.md §8: 0 ok, 1 the model can't be read, 2 bad command line). */
int nncc_cmd_inspect(int argc, char **argv);

#endif
