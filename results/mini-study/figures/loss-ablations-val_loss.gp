set terminal pngcairo size 1200,800 font 'DejaVu Sans,11' noenhanced
set output 'loss-ablations-val_loss.png'
set title 'Validation loss, sweep study-mini (held-out images, fixed noise and timesteps; mean over seeds)'
set xlabel 'training step'
set ylabel 'validation loss'
set grid
set key outside right top
plot \
  'loss-ablations-val_loss.dat' index 0 using 1:2 with linespoints lw 2.5 pt 7 ps 1.2 lc rgb '#1f77b4' title 'kmeans', \
  'loss-ablations-val_loss.dat' index 1 using 1:2 with linespoints lw 2.5 pt 7 ps 1.2 lc rgb '#ff7f0e' title 'promoe', \
  'loss-ablations-val_loss.dat' index 2 using 1:2 with linespoints lw 2.5 pt 7 ps 1.2 lc rgb '#2ca02c' title 'promoe-softmax', \
  'loss-ablations-val_loss.dat' index 3 using 1:2 with linespoints lw 2.5 pt 7 ps 1.2 lc rgb '#d62728' title 'promoe-sigmoid', \
  'loss-ablations-val_loss.dat' index 4 using 1:2 with linespoints lw 2.5 pt 7 ps 1.2 lc rgb '#9467bd' title 'kmeans-nocond', \
  'loss-ablations-val_loss.dat' index 5 using 1:2 with linespoints lw 2.5 pt 7 ps 1.2 lc rgb '#8c564b' title 'promoe-top3', \
  'loss-ablations-val_loss.dat' index 6 using 1:2 with linespoints lw 2.5 pt 7 ps 1.2 lc rgb '#e377c2' title 'promoe-lb'
