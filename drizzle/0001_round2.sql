CREATE TABLE "two_factor"."challenges" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"attempts" integer NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "two_factor"."enrolments" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"secret" text NOT NULL,
	"algorithm" text NOT NULL,
	"digits" integer NOT NULL,
	"period" integer NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "two_factor"."marks" (
	"key" text PRIMARY KEY NOT NULL,
	"until" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "two_factor"."accounts" ADD COLUMN "enrolment_id" text;--> statement-breakpoint
ALTER TABLE "two_factor"."accounts" ADD COLUMN "algorithm" text;--> statement-breakpoint
ALTER TABLE "two_factor"."accounts" ADD COLUMN "digits" integer;--> statement-breakpoint
ALTER TABLE "two_factor"."accounts" ADD COLUMN "period" integer;--> statement-breakpoint
CREATE INDEX "challenges_expires_idx" ON "two_factor"."challenges" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "enrolments_user_idx" ON "two_factor"."enrolments" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "enrolments_expires_idx" ON "two_factor"."enrolments" USING btree ("expires_at");