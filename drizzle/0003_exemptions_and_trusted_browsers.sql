CREATE TABLE "two_factor"."trusted_devices" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"digest" text NOT NULL,
	"previous_digest" text,
	"enrolment_id" text,
	"label" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"last_used_at" timestamp with time zone,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "two_factor"."accounts" ADD COLUMN "exempt_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "two_factor"."accounts" ADD COLUMN "exempt_reason" text;--> statement-breakpoint
CREATE INDEX "trusted_devices_user_idx" ON "two_factor"."trusted_devices" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "trusted_devices_expires_idx" ON "two_factor"."trusted_devices" USING btree ("expires_at");