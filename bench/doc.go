// Package bench will hold macro benchmarks and the side-by-side comparison
// against reference WebSocket servers. Micro-benchmarks live beside the code
// they measure (ring/, netpoll/, protocol/, engine/).
package bench
