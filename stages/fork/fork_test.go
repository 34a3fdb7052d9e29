package fork

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLayout(t *testing.T) {
	cases := []struct {
		keep      []int
		pipe      int
		wantFiles []int
		wantAt    int
	}{
		{nil, 9, []int{10, 11, 2, 9}, 3},
		{[]int{3, 4}, 9, []int{10, 11, 2, 3, 4, 9}, 5},
		{[]int{6}, 9, []int{10, 11, 2, 9, -1, -1, 6}, 3},
	}
	for _, c := range cases {
		files, at := Layout([3]int{10, 11, 2}, c.keep, c.pipe)
		if at != c.wantAt || !cmp.Equal(files, c.wantFiles) {
			t.Errorf("Layout(keep %v) = %v, %d; want %v, %d", c.keep, files, at, c.wantFiles, c.wantAt)
		}
	}
}
