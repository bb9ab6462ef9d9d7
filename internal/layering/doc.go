// Package layering holds the repository-wide checks of DESIGN.md's rules:
// which package may import which, and that every package documents itself.
// It has no code of its own.
package layering
