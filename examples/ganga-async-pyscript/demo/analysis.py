"""A stand-in for an analysis: select the events of each run named on the command line."""

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--cut", default="", help="the selection to apply")
parser.add_argument("runs", nargs="+", help="the runs to read")
options = parser.parse_args()
for run in options.runs:
    print(f"{run}: selected {options.cut}")
