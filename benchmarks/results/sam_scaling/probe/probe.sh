#!/bin/bash
L=../shared/data/liquid_200.extxyz
for T in 600 800 1000; do
  W=$((T/2))
  for M in nh3-allegro nh3-legato; do
    OMP_NUM_THREADS=1 nice -n 5 legato stability run $M $L --protocol authors --timestep-fs 2.0 --replicate 1x1x1 \
      --replicas 3 --max-steps 1500 --temperature-K $T --window-K $W --seed 100 --results probe_$T.jsonl --label $M
  done
done
