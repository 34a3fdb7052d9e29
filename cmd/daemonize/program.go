package main

import (
	"errors"

	"github.com/blivet-go/blivet"
)

// newProgram resolves the program part of the command line (see
// blivet.NewProgram): a name with a slash is made absolute now (it must still
// run after -c); a bare name is looked up in PATH when it is exec'd, after
// -E and -u applied. Errors are usage errors.
func newProgram(argv []string) (*blivet.Program, error) {
	p, err := blivet.NewProgram(argv)
	if err != nil {
		var e *blivet.Error
		if errors.As(err, &e) {
			return nil, usagef("%v", e.Err)
		}
		return nil, usagef("%v", err)
	}
	return p, nil
}
