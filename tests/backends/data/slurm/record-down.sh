#!/usr/bin/env bash
# Records what the Slurm commands print while slurmctld is down (run with it stopped:
# scripts/slurm-down.sh slurmctld; start it again with scripts/slurm-up.sh).
set -uo pipefail
cd "$(dirname "$0")"
timeout 60 squeue --noheader --array --states=all --jobs=1 --format='%i|%T|%S|%e' >/dev/null 2>squeue_controller_down.err
timeout 60 sbatch --parsable -o /dev/null --wrap true >/dev/null 2>sbatch_controller_down.err
