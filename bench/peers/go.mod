module blivet-bench-peers

go 1.23.0

replace github.com/blivet-go/blivet => ../..

require (
	github.com/VividCortex/godaemon v1.0.0
	github.com/blivet-go/blivet v0.0.0-00010101000000-000000000000
	github.com/sevlyar/go-daemon v0.1.6
	golang.org/x/sys v0.35.0
)

require (
	github.com/kardianos/osext v0.0.0-20190222173326-2bc1f35cddc0 // indirect
	go.uber.org/multierr v1.11.0 // indirect
)
