# SPDX-License-Identifier: GPL-2.0
# The size sweeps of memmgr_bench, as PNG on stdout (selftests/bench/run.sh):
#   gnuplot -e "datadir='DIR'; accel='tcg'; title='DATE, KERNEL'" plot.gp
# DIR/sizes.dat: bytes memmgr_ns anon_ns memfd_ns (case 2)
# DIR/small.dat: bytes memmgr_ns glibc_ns jemalloc_ns (case 6)
if (!exists("datadir")) datadir = "build/bench"
if (!exists("accel")) accel = "tcg"
if (!exists("title")) title = ""

set terminal pngcairo size 1100,460 font "sans,10"
set multiplot layout 1,2 title sprintf("memmgr\\_bench, QEMU %s, %s: medians", accel, title)
set logscale xy
set grid
set format y "%.0f"
set key top left Left reverse
set format x "%.0b%BB"
set xtics ("64K" 65536, "2M" 2097152, "32M" 33554432)

set title "case 2: allocate, mmap, write every page, munmap, free"
set xlabel "buffer size"
set ylabel "time per cycle (us)"
plot datadir."/sizes.dat" using 1:($2/1e3) with linespoints lw 2 pt 7 title "memmgr", \
     "" using 1:($3/1e3) with linespoints lw 2 pt 5 title "anonymous mmap, MAP\\_POPULATE", \
     "" using 1:($4/1e3) with linespoints lw 2 pt 9 title "memfd"

set title "case 6: small objects, alloc + free (batches of one size)"
set xlabel "object size (bytes)"
set ylabel "time per alloc+free (ns)"
set xtics ("16" 16, "64" 64, "256" 256, "1K" 1024, "2K" 2048, "4K" 4096)
plot datadir."/small.dat" using 1:2 with linespoints lw 2 pt 7 title "libmemmgr", \
     "" using 1:3 with linespoints lw 2 pt 5 title "glibc malloc", \
     "" using 1:4 with linespoints lw 2 pt 9 title "jemalloc"
unset multiplot
