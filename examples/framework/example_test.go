package framework_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/examples/framework"
)

// A whole service: the framework daemonizes, reads the configuration,
// runs Init as root, drops to the user, checks health, tells the launcher
// and serves. (Not run: it daemonizes.)
func ExampleApp_Main() {
	var ln net.Listener
	app := &framework.App{
		Name:       "greeter",
		ConfigPath: "greeter.conf", // relative to where it was started
		Options: []blivet.Option{
			blivet.WithPidfile("/run/greeter.pid"),
			blivet.WithStderr("/var/log/greeter.log"),
			blivet.WithUser("nobody"),
		},
		Init: func(cfg framework.Config) (err error) {
			ln, err = net.Listen("tcp", cfg["listen"]) // still root
			return err
		},
		Health: func() error {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return err
			}
			return c.Close()
		},
		Serve: func(cfg framework.Config) error {
			for {
				c, err := ln.Accept()
				if err != nil {
					return err
				}
				fmt.Fprintln(c, cfg["greeting"])
				c.Close()
			}
		},
	}
	app.Main()
}

// Start runs the pipeline and returns in the daemon, already announced
// ready. A test passes a Recorder's options first.
func ExampleApp_Start() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "app.conf")
	_ = os.WriteFile(conf, []byte("greeting = hello\n"), 0o644)

	app := &framework.App{Name: "demo", ConfigPath: conf}
	rec := blivettest.NewRecorder(nil)
	var ctx *blivet.Context
	err := rec.Call(func() {
		var err error
		if ctx, err = app.Start(rec.Options()...); err != nil {
			panic(err)
		}
	})
	fmt.Println(err, ctx.Role(), rec.Launcher().Ready)
	// Output: <nil> daemon true
}

// The framework's stages and hooks around the default pipeline.
func ExampleApp_BlivetOptions() {
	app := &framework.App{Name: "demo"}
	rec := blivettest.NewRecorder(nil)
	_, err := rec.Daemonize(app.BlivetOptions()...)
	fmt.Println(err)
	fmt.Println(rec.Stages()[4:])
	// Output:
	// <nil>
	// [umask load-config chdir stdio pidfile env output closefds privdrop health notify]
}

// Config is what the load-config stage read, in the daemon, before chdir.
func ExampleApp_Config() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "app.conf")
	_ = os.WriteFile(conf, []byte("# demo\nlisten = :7007\ngreeting = hello\n"), 0o644)

	app := &framework.App{ConfigPath: conf}
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(app.BlivetOptions()...)
	fmt.Println(app.Config()["listen"], app.Config()["greeting"], len(app.Config()))
	// Output: :7007 hello 2
}
