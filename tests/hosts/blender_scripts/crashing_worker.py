#!/usr/bin/env python3
"""A stand-in gvfx that says hello, then dies on the first request (exit code 3), as a crash would."""
import json
import sys

print(json.dumps({"v": 1, "type": "hello", "gvfx": "0.0", "pid": 0, "protocol": 1}), flush=True)
sys.stdin.readline()
sys.stderr.write("simulated crash: segmentation fault in the engine\n")
sys.stderr.flush()
sys.exit(3)
