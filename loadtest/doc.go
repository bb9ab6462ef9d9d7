// Package loadtest will hold the open-loop load generator's library and
// scenarios. Not yet implemented: see the measuring-stick issue.
package loadtest
