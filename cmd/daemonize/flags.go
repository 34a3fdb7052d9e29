package main

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The command line is parsed as POSIX getopt(3) does, with GNU long
// options: short options cluster (-fv), a short option's argument is the
// rest of its word or the next word (-p/x, -p /x), a long option's is
// after "=" or the next word (--pidfile=/x, --pidfile /x), a boolean long
// option may say --append=false, long options are never abbreviated, and
// parsing stops at "--" or at the first word that is not an option (the
// program's own flags are never daemonize's).
//
// It is written here rather than taken from a flag library: the one used
// before (pborman/getopt) records the caller of every declaration through
// runtime.Caller, which cost 0.29 ms of every launch (15 % of a whole Go
// start and exec on the bench machine).

// option is one declared option: its names and where its value goes.
// Exactly one target is set; the option set is one table (no closure or
// allocation per option: the launch pays for every one).
type option struct {
	long  string
	short rune // 0: long only
	seen  bool

	boolean  *bool
	str      *string
	list     *[]string
	split    bool // list: each argument is also a comma-separated list
	duration *time.Duration
	decimal  *int
}

// name returns how the option is shown in messages: -p/--pidfile.
func (o *option) name() string {
	if o.short == 0 {
		return "--" + o.long
	}
	return "-" + string(o.short) + "/--" + o.long
}

// set stores the argument v of an option that takes one.
func (o *option) set(v string) error {
	switch {
	case o.str != nil:
		*o.str = v
	case o.list != nil && o.split:
		*o.list = append(*o.list, strings.Split(v, ",")...)
	case o.list != nil:
		*o.list = append(*o.list, v)
	case o.duration != nil:
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("not a duration (such as 500ms, 10s or 1m30s)")
		}
		*o.duration = d
	case o.decimal != nil:
		// Base 10: --ready-fd 010 is 10.
		n, err := strconv.Atoi(v)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return errors.New("out of range")
			}
			return errors.New("not a decimal number")
		}
		*o.decimal = n
	}
	return nil
}

// flagSet is the option set of one command line.
type flagSet struct {
	options []option
	given   []*option // each option given, once, in command-line order
	rest    []string  // the program and its arguments
}

func (fs *flagSet) byLong(name string) *option {
	for i := range fs.options {
		if fs.options[i].long == name {
			return &fs.options[i]
		}
	}
	return nil
}

func (fs *flagSet) byShort(r rune) *option {
	for i := range fs.options {
		if fs.options[i].short == r && r != 0 {
			return &fs.options[i]
		}
	}
	return nil
}

// changed reports whether the long option name was given.
func (fs *flagSet) changed(name string) bool {
	o := fs.byLong(name)
	return o != nil && o.seen
}

// Args returns the words after the options: the program and its
// arguments.
func (fs *flagSet) Args() []string { return fs.rest }

func (fs *flagSet) mark(o *option) {
	if !o.seen {
		o.seen = true
		fs.given = append(fs.given, o)
	}
}

// parse parses args (without argv[0]) up to the first non-option or "--".
// Every error it returns is a *usageError.
func (fs *flagSet) parse(args []string) error {
	i := 0
	for i < len(args) {
		arg := args[i]
		if arg == "--" {
			i++
			break
		}
		if len(arg) < 2 || arg[0] != '-' {
			break // the program ("-" included)
		}
		i++
		if long, ok := strings.CutPrefix(arg, "--"); ok {
			name, value, hasValue := strings.Cut(long, "=")
			o := fs.byLong(name)
			if o == nil {
				return usagef("unknown option --%s", name)
			}
			if o.boolean != nil {
				v := true
				if hasValue {
					b, ok := parseBool(value)
					if !ok {
						return usagef("--%s takes no argument (or true or false), not %q", name, value)
					}
					v = b
				}
				*o.boolean = v
				fs.mark(o)
				continue
			}
			if err := fs.takeValue(o, "--"+name, value, hasValue, args, &i); err != nil {
				return err
			}
			continue
		}
		// A cluster of short options: -fv, -p/x.
		for j := 1; j < len(arg); {
			r, size := utf8.DecodeRuneInString(arg[j:])
			j += size
			o := fs.byShort(r)
			if o == nil {
				if len(arg) > 2 {
					return usagef("unknown option -%c (in %s)", r, arg)
				}
				return usagef("unknown option -%c", r)
			}
			if o.boolean != nil {
				*o.boolean = true
				fs.mark(o)
				continue
			}
			// The rest of the word, else the next one, is the argument.
			if err := fs.takeValue(o, "-"+string(r), arg[j:], j < len(arg), args, &i); err != nil {
				return err
			}
			break
		}
	}
	fs.rest = args[i:]
	return nil
}

// takeValue sets o, shown as label in messages, to value when the word
// carried one (attached), else to the next word args[*i], which it
// consumes.
func (fs *flagSet) takeValue(o *option, label, value string, attached bool, args []string, i *int) error {
	if !attached {
		if *i == len(args) {
			return usagef("option %s needs an argument", label)
		}
		value = args[*i]
		*i++
	}
	if err := o.set(value); err != nil {
		return usagef("invalid argument %q for %s: %v", value, label, err)
	}
	fs.mark(o)
	return nil
}

// parseBool accepts what a boolean long option may be set to.
func parseBool(s string) (v, ok bool) {
	switch strings.ToLower(s) {
	case "true", "t", "on", "yes", "1":
		return true, true
	case "false", "f", "off", "no", "0":
		return false, true
	}
	return false, false
}
