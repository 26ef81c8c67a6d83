# SPDX-License-Identifier: GPL-2.0
# The size sweeps of memmgr_bench, as PNG on stdout (selftests/bench/run.sh):
#   gnuplot -e "datadir='DIR'; accel='tcg'; title='DATE, KERNEL'" plot.gp
# DIR/sizes.dat: bytes memmgr_ns anon_ns memfd_ns (case 2)
# DIR/small.dat: bytes memmgr_ns glibc_ns jemalloc_ns (case 6)
# DIR/malloc.txt: bytes shape threads glibc_ns jemalloc_ns memmgr_ns
#   alloc_exec_ns ... (case 12), plotted when malloc=1
if (!exists("datadir")) datadir = "build/bench"
if (!exists("malloc")) malloc = 0
if (!exists("accel")) accel = "tcg"
if (!exists("title")) title = ""

set terminal pngcairo size (malloc ? 1650 : 1100),460 font "sans,10"
set multiplot layout 1,(malloc ? 3 : 2) title sprintf("memmgr\\_bench, QEMU %s, %s: medians", accel, title)
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

if (malloc) {
	set title "case 12: alloc + memset + free, one thread"
	set ylabel "time per op (ns)"
	set xtics ("16" 16, "256" 256, "4K" 4096, "64K" 65536, "1M" 1048576, "8M" 8388608)
	# Rows: per size, 4 shapes of 2 thread counts; "write", 1T is the third.
	plot datadir."/malloc.txt" every 8::2 using 1:6 with linespoints lw 2 pt 7 title "memmgr\\_malloc", \
	     "" every 8::2 using 1:4 with linespoints lw 2 pt 5 title "glibc malloc", \
	     "" every 8::2 using 1:5 with linespoints lw 2 pt 9 title "jemalloc", \
	     "" every 8::2 using 1:7 with linespoints lw 2 pt 11 title "memmgr\\_alloc\\_exec"
}
unset multiplot
