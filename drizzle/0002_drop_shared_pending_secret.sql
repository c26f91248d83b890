ALTER TABLE "two_factor"."accounts" DROP COLUMN "pending_secret";--> statement-breakpoint
ALTER TABLE "two_factor"."accounts" DROP COLUMN "pending_created_at";