package directory

import (
	"context"
	"strings"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/auth"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// Admin makes the org changes an admin asks for: each becomes a command on the
// partition of the record it changes, and the call waits for its outcome.
type Admin struct {
	dir        *Service
	bus        *command.Bus
	bcryptCost int
	wait       time.Duration
}

// NewAdmin returns the admin use cases.
func NewAdmin(dir *Service, bus *command.Bus, bcryptCost int, wait time.Duration) *Admin {
	if wait == 0 {
		wait = 10 * time.Second
	}
	return &Admin{dir: dir, bus: bus, bcryptCost: bcryptCost, wait: wait}
}

func (ad *Admin) do(ctx context.Context, name, key string, a org.Actor, args any) error {
	o, err := ad.bus.Do(ctx, "", name, key, a, args, ad.wait)
	if err != nil {
		return err
	}
	return o.Err()
}

// CreateUnit creates a unit.
func (ad *Admin) CreateUnit(ctx context.Context, a org.Actor, args CreateUnitArgs) error {
	if err := args.Validate(); err != nil {
		return err
	}
	return ad.do(ctx, CmdCreateUnit, org.PartitionKey(args.ID), a, args)
}

// CreateUser creates a login with an initial password, which is hashed here: plain
// passwords never enter the command stream.
func (ad *Admin) CreateUser(ctx context.Context, a org.Actor, args CreateUserArgs, password string) error {
	args.Login = strings.ToLower(args.Login)
	if err := args.Validate(); err != nil {
		return err
	}
	if !a.Sees(args.UnitID) {
		return fault.New(fault.Forbidden, "out_of_scope", "the unit is outside the caller's area")
	}
	hash, err := auth.HashPassword(password, ad.bcryptCost)
	if err != nil {
		return err
	}
	args.PasswordHash = hash
	return ad.do(ctx, CmdCreateUser, org.PartitionKey(args.UnitID), a, args)
}

// MoveUser gives a user another home unit, on the partition the user was created
// under.
func (ad *Admin) MoveUser(ctx context.Context, a org.Actor, args MoveUserArgs) error {
	args.Login = strings.ToLower(args.Login)
	if !ValidLogin(args.Login) || !org.ValidCode(args.UnitID) {
		return &fault.Error{Kind: fault.Invalid, Code: "invalid_args", Message: "a login and a unit code are required",
			Fields: map[string]string{"unitId": "a unit code"}}
	}
	key, err := ad.dir.PartitionOf(ctx, args.Login)
	if err != nil {
		return err
	}
	if key == "" {
		return fault.New(fault.NotFound, "not_found", "no such user in the caller's area")
	}
	if err := ad.do(ctx, CmdMoveUser, key, a, args); err != nil {
		return err
	}
	// Other instances see the move within UnitsCacheTTL.
	ad.dir.Forget(args.Login)
	return nil
}
