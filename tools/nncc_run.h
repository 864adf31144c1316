/* nncc_run.h — the `nncc run` subcommand (tools/nncc_run.c).
 *
 *   nncc run OUT.so [NAME=FILE.npy | FILE.npy]... [--out-dir DIR]
 *            [--threads N] [--bench N] [--profile]
 *
 * tools/nncc.c calls it when argv[1] is "run", with the arguments after
 * "run": `return nncc_cmd_run(argc - 2, argv + 2);`. Returns the process
 * exit code: 0 ok, 1 the model or an input is bad (can't load, wrong
 * shape, unreadable .npy), 2 bad command line.
 */
#ifndef NNCC_RUN_H
#define NNCC_RUN_H

int nncc_cmd_run(int argc, char **argv);

/* `nncc inspect OUT.so` (tools/inspect_so.c): describes a compiled model
 * through the runtime API. Returns the exit code (0, or 1 if it can't be
 * loaded). */
int nncc_inspect_so(const char *path);

#endif
