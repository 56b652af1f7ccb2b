package mdns_test

import (
	"fmt"

	"github.com/colugo-go/colugo/discovery/mdns"
)

// Names made seed-visible must be ones the Python colugo can carry.
func ExampleCheckSeedName() {
	for _, name := range []string{"robot/arm", "pub.topic", "robot_arm", "a.very.long.topic.name.xy"} {
		if err := mdns.CheckSeedName(name); err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: ok\n", name)
	}
	// Output:
	// robot/arm: ok
	// pub.topic: ok
	// colugo/discovery/mdns: name "robot_arm" cannot be seed-visible: only letters, digits, '.', '/' and '-' (the seed splits names on '_')
	// colugo/discovery/mdns: name "a.very.long.topic.name.xy" cannot be seed-visible: the seed carries 1 to 24 bytes
}
