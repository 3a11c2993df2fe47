#!/bin/bash
# Items 1-3 of issue 10 at the issue's own 2.5 fs (authors' protocol), bundled models.
# usage: run.sh MODEL
M=$1
L=../shared/data/liquid_200.extxyz
C=crystal_2x2x2.extxyz   # ammonia_crystal((2, 2, 2)) written to extxyz
R=${M}_dt2.5fs.jsonl
export OMP_NUM_THREADS=1
nice -n 5 legato stability run $M $L --protocol authors --timestep-fs 2.5 --replicate 1x1x1 --replicas 6 \
  --max-steps 1000 --temperature-K 400 --window-K 200 --seed 11 --results $R --label $M-400K
nice -n 5 legato stability run $M $L --protocol authors --timestep-fs 2.5 --replicate 1x1x1 --replicas 8 \
  --max-steps 4000 --temperature-K 200 --seed 12 --results $R --label $M-200K
nice -n 5 legato stability run $M $C --protocol authors --timestep-fs 2.5 --replicate 1x1x1 --replicas 4 \
  --max-steps 4000 --temperature-K 150 --window-K 75 --settle-steps 200 --seed 21 --results $R --label $M-crystal150K
