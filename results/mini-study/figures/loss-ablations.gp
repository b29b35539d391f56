set terminal pngcairo size 1200,800 font 'DejaVu Sans,11' noenhanced
set output 'loss-ablations.png'
set title 'Training loss, sweep study-mini (mean over seeds; bold: centred mean over 200 steps; faint: raw)'
set xlabel 'training step'
set ylabel 'training loss'
set grid
set key outside right top
plot \
  'loss-ablations.dat' index 0 using 1:2 with lines lw 1 lc rgb '#b01f77b4' notitle, \
  'loss-ablations.dat' index 1 using 1:2 with lines lw 1 lc rgb '#b0ff7f0e' notitle, \
  'loss-ablations.dat' index 2 using 1:2 with lines lw 1 lc rgb '#b02ca02c' notitle, \
  'loss-ablations.dat' index 3 using 1:2 with lines lw 1 lc rgb '#b0d62728' notitle, \
  'loss-ablations.dat' index 4 using 1:2 with lines lw 1 lc rgb '#b09467bd' notitle, \
  'loss-ablations.dat' index 5 using 1:2 with lines lw 1 lc rgb '#b08c564b' notitle, \
  'loss-ablations.dat' index 6 using 1:2 with lines lw 1 lc rgb '#b0e377c2' notitle, \
  'loss-ablations.dat' index 0 using 1:3 with lines lw 2.5 lc rgb '#1f77b4' title 'kmeans', \
  'loss-ablations.dat' index 1 using 1:3 with lines lw 2.5 lc rgb '#ff7f0e' title 'promoe', \
  'loss-ablations.dat' index 2 using 1:3 with lines lw 2.5 lc rgb '#2ca02c' title 'promoe-softmax', \
  'loss-ablations.dat' index 3 using 1:3 with lines lw 2.5 lc rgb '#d62728' title 'promoe-sigmoid', \
  'loss-ablations.dat' index 4 using 1:3 with lines lw 2.5 lc rgb '#9467bd' title 'kmeans-nocond', \
  'loss-ablations.dat' index 5 using 1:3 with lines lw 2.5 lc rgb '#8c564b' title 'promoe-top3', \
  'loss-ablations.dat' index 6 using 1:3 with lines lw 2.5 lc rgb '#e377c2' title 'promoe-lb'
