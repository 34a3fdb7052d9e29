package main

import (
	"strconv"
	"strings"
	"time"
)

// A hand-written getopt_long: the CLI needs little (short clusters, long
// options with "=" or a separate value, options ending at the first
// non-option or "--"), and a flag library would link the net package into
// the launcher, which costs about 0.2 ms at every start.

// optKind is what an option takes.
type optKind int

const (
	optBool     optKind = iota // no value
	optString                  // one value; the last one wins
	optStrings                 // repeatable, values accumulate
	optDuration                // a time.ParseDuration value
)

// option is one command-line option and where its value goes.
type option struct {
	long    string
	short   byte // 0: long only
	kind    optKind
	b       *bool
	s       *string
	ss      *[]string
	d       *time.Duration
	changed bool
}

// optionSet parses a command line into its options.
type optionSet struct{ opts []*option }

func (s *optionSet) add(o *option) { s.opts = append(s.opts, o) }

func (s *optionSet) boolVar(p *bool, long string, short byte) {
	s.add(&option{long: long, short: short, kind: optBool, b: p})
}

func (s *optionSet) stringVar(p *string, long string, short byte) {
	s.add(&option{long: long, short: short, kind: optString, s: p})
}

func (s *optionSet) stringsVar(p *[]string, long string, short byte) {
	s.add(&option{long: long, short: short, kind: optStrings, ss: p})
}

func (s *optionSet) durationVar(p *time.Duration, long string, short byte) {
	s.add(&option{long: long, short: short, kind: optDuration, d: p})
}

// changed reports whether the option named long was given.
func (s *optionSet) changed(long string) bool {
	for _, o := range s.opts {
		if o.long == long {
			return o.changed
		}
	}
	return false
}

func (s *optionSet) lookup(long string, short byte) *option {
	for _, o := range s.opts {
		if (long != "" && o.long == long) || (short != 0 && o.short == short) {
			return o
		}
	}
	return nil
}

// set stores value into o; as names the option in errors.
func (o *option) set(value, as string) error {
	switch o.kind {
	case optBool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return usagef("invalid argument %q for %q flag: not a boolean", value, as)
		}
		*o.b = b
	case optString:
		*o.s = value
	case optStrings:
		*o.ss = append(*o.ss, value)
	case optDuration:
		d, err := time.ParseDuration(value)
		if err != nil {
			return usagef("invalid argument %q for %q flag: %v", value, as, err)
		}
		*o.d = d
	}
	o.changed = true
	return nil
}

// parse reads options from args and returns the rest: the program and
// its arguments. Options end at the first argument that is not one ("-"
// included) or after "--". A value follows its short option directly
// ("-p/run/x.pid", where a leading "=" is dropped) or as the next
// argument; a long option's value follows "=" or comes next.
func (s *optionSet) parse(args []string) ([]string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args[i+1:], nil
		case a == "-" || !strings.HasPrefix(a, "-"):
			return args[i:], nil
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			o := s.lookup(name, 0)
			if o == nil || name == "" {
				return nil, usagef("unknown flag: --%s", name)
			}
			if o.kind == optBool && !hasValue {
				value = "true"
			} else if !hasValue {
				if i+1 >= len(args) {
					return nil, usagef("flag needs an argument: --%s", name)
				}
				i++
				value = args[i]
			}
			if err := o.set(value, "--"+name); err != nil {
				return nil, err
			}
		default:
			for j := 1; j < len(a); j++ {
				o := s.lookup("", a[j])
				if o == nil {
					return nil, usagef("unknown shorthand flag: %q in %s", a[j], a)
				}
				if o.kind == optBool {
					if err := o.set("true", "-"+a[j:j+1]); err != nil {
						return nil, err
					}
					continue
				}
				value := strings.TrimPrefix(a[j+1:], "=")
				if j == len(a)-1 {
					if i+1 >= len(args) {
						return nil, usagef("flag needs an argument: %q in %s", a[j], a)
					}
					i++
					value = args[i]
				}
				if err := o.set(value, "-"+a[j:j+1]); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	return nil, nil
}
