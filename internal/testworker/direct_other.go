//go:build !linux

package main

import "errors"

// directWrite needs Linux: O_DIRECT is what -write-direct is about, and it is Linux's.
func directWrite(string, int64, int64) error {
	return errors.New("O_DIRECT writes need Linux")
}
