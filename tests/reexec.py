"""reexec.py — for test scripts that need torch or numpy.

The first python3 on PATH may be an interpreter without Debian's
python3-torch; a script that fails to import what it needs calls
reexec(tag, script) to restart itself under $NNCC_PYTHON or /usr/bin/python3.
`tag` names an environment variable set across the restart so a second
failure doesn't loop; when no other interpreter is there it returns and the
caller reports the error.
"""
import os
import sys


def reexec(tag, script):
  if os.environ.get(tag):
    return
  for cand in (os.environ.get("NNCC_PYTHON"), "/usr/bin/python3"):
    if not cand or not os.path.exists(cand):
      continue
    if os.path.realpath(cand) == os.path.realpath(sys.executable):
      continue
    os.environ[tag] = "1"
    os.execv(cand, [cand, os.path.abspath(script)] + sys.argv[1:])
